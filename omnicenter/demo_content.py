"""The words of the demo data: people, places and contact-center conversations in English,
Polish and Russian. Used by `manage.py demo_data` only."""

from __future__ import annotations

from channels_inbound.models import Channel

K = Channel.Kind
SUPPORT, SALES = "Support", "Sales"

# (first name, last name, country); every language has 20 people.
PEOPLE = {
    "pl": [
        ("Katarzyna", "Kowalska", "PL"), ("Jan", "Nowak", "PL"), ("Tomasz", "Wiśniewski", "PL"),
        ("Agnieszka", "Wójcik", "PL"), ("Michał", "Kamiński", "PL"), ("Magdalena", "Lewandowska", "PL"),
        ("Paweł", "Zieliński", "PL"), ("Joanna", "Szymańska", "PL"), ("Krzysztof", "Woźniak", "PL"),
        ("Aleksandra", "Dąbrowska", "PL"), ("Marcin", "Kozłowski", "PL"), ("Monika", "Jankowska", "PL"),
        ("Łukasz", "Mazur", "PL"), ("Ewa", "Kwiatkowska", "PL"), ("Grzegorz", "Krawczyk", "PL"),
        ("Natalia", "Piotrowska", "PL"), ("Bartosz", "Grabowski", "PL"), ("Zofia", "Pawłowska", "PL"),
        ("Jakub", "Michalski", "PL"), ("Barbara", "Nowakowska", "PL"),
    ],
    "ru": [
        ("Иван", "Иванов", "RU"), ("Анна", "Смирнова", "RU"), ("Сергей", "Кузнецов", "RU"),
        ("Екатерина", "Попова", "RU"), ("Алексей", "Васильев", "RU"), ("Мария", "Петрова", "RU"),
        ("Дмитрий", "Соколов", "RU"), ("Ольга", "Михайлова", "RU"), ("Андрей", "Новиков", "RU"),
        ("Татьяна", "Фёдорова", "RU"), ("Николай", "Морозов", "RU"), ("Наталья", "Волкова", "RU"),
        ("Михаил", "Алексеев", "RU"), ("Юлия", "Лебедева", "RU"), ("Павел", "Семёнов", "RU"),
        ("Светлана", "Егорова", "RU"), ("Артём", "Павлов", "RU"), ("Ирина", "Козлова", "RU"),
        ("Владимир", "Степанов", "RU"), ("Ксения", "Николаева", "RU"),
    ],
    "en": [
        ("Emily", "Johnson", "GB"), ("Oliver", "Smith", "GB"), ("Sophie", "Williams", "GB"),
        ("Jack", "Brown", "GB"), ("Charlotte", "Taylor", "GB"), ("Harry", "Davies", "GB"),
        ("Amelia", "Evans", "GB"), ("George", "Wilson", "GB"), ("Jessica", "Thomas", "GB"),
        ("Thomas", "Wright", "GB"), ("Michael", "Miller", "US"), ("Ashley", "Davis", "US"),
        ("Daniel", "Garcia", "US"), ("Sarah", "Martinez", "US"), ("Ryan", "Anderson", "US"),
        ("Megan", "Clark", "US"), ("Christopher", "Lee", "US"), ("Lauren", "Hall", "US"),
        ("Hannah", "Walker", "GB"), ("William", "Harris", "US"),
    ],
}
MAIL_DOMAIN = {"pl": "poczta.example", "ru": "pochta.example", "en": "mailbox.example"}
CITIES = {
    "PL": ["Warszawa", "Kraków", "Gdańsk", "Wrocław", "Poznań", "Łódź"],
    "RU": ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург"],
    "GB": ["London", "Manchester", "Leeds", "Bristol"],
    "US": ["New York", "Boston", "Chicago", "Seattle"],
}
# (name, email domain, last names of the demo people who work there)
ORGANIZATIONS = (
    ("Wisła Logistyka Sp. z o.o.", "wisla-logistyka.example", ("Wiśniewski", "Jankowska", "Michalski")),
    ("ООО «Северный ветер»", "severveter.example", ("Кузнецов", "Волкова", "Степанов")),
    ("Brightline Ltd", "brightline.example", ("Smith", "Taylor", "Wright")),
    ("Northwind Traders Inc.", "northwind.example", ("Miller", "Garcia", "Hall")),
)
PLANS = ("Basic", "Plus", "Business")

TOPIC_TEAM = {
    "plan_change": SALES, "cancel_subscription": SALES, "discount_code": SALES, "product_question": SALES,
    "invoice": SALES,
}
TOPIC_TAGS = {
    "order_status": ["orders"], "refund": ["refund", "billing"], "delivery_delay": ["delivery"],
    "invoice": ["billing", "invoice"], "password_reset": ["account"], "warranty": ["warranty"],
    "plan_change": ["upsell"], "damaged_item": ["delivery", "damaged"], "wrong_item": ["orders", "returns"],
    "payment_failed": ["billing", "payments"], "address_change": ["orders"], "cancel_subscription": ["churn-risk"],
    "discount_code": ["promo"], "account_locked": ["account", "security"], "product_question": ["presales"],
}
URGENT_TOPICS = {"damaged_item", "payment_failed", "account_locked", "delivery_delay"}

# Per language and topic: subject, first message, follow-up, the agent's answer. {order} and {name}
# are filled in per ticket.
TEXTS = {
    "en": {
        "order_status": ("Where is my order {order}?", "Hi, I ordered on Monday and the tracking page still says “label created”. Order {order}. Can you check where it is?", "Any news on order {order}? It has been three days.", "Hi {name}, I checked with the courier: order {order} left our warehouse yesterday and should arrive within two working days."),
        "refund": ("Refund for order {order}", "Hello, I returned the headphones two weeks ago but I still have not received my refund. Order {order}.", "I'm still waiting for the refund, could you please check?", "Hi {name}, the return arrived and I've approved the refund for order {order}. It takes 3–5 working days to show on your card."),
        "delivery_delay": ("Delivery is late", "My parcel was supposed to arrive yesterday and nothing came. I need it for a birthday on Saturday.", "The courier now says “address not found”. My address is correct!", "Hi {name}, sorry about the delay. The courier had a backlog at the depot; we've asked for priority delivery tomorrow before noon."),
        "invoice": ("VAT invoice for order {order}", "Could you send me a VAT invoice for order {order}? Our company details are in the account.", "The invoice has the wrong company name, could you correct it?", "Hi {name}, the corrected invoice for order {order} is in your account and was also emailed to you."),
        "password_reset": ("Password reset email not arriving", "I clicked “forgot password” three times but the email never arrives. I checked spam too.", "Still nothing. Can you reset it for me?", "Hi {name}, our mail to your address was blocked after an old bounce. I've cleared it; please try the reset link again, it is valid for one hour."),
        "warranty": ("Warranty claim: coffee machine", "My coffee machine stopped heating after 8 months. It is still under warranty, what should I do?", "I sent photos of the serial number yesterday.", "Hi {name}, thanks for the photos. The warranty claim is registered and a courier will collect the machine free of charge; the label is in your email."),
        "plan_change": ("Upgrade to the Business plan", "We are growing and need more seats. How do we move from Plus to Business, and is the price prorated?", "Can the upgrade start with the next billing cycle instead?", "Hi {name}, yes, the upgrade is prorated to the day. I can switch you now or on the 1st, whichever you prefer."),
        "damaged_item": ("Item arrived damaged", "The box was crushed and the glass lid is cracked. Order {order}. Photos attached.", "Do I need to send the broken one back?", "Hi {name}, so sorry! No need to return it, we are sending a replacement for order {order} today."),
        "wrong_item": ("Wrong item received", "I ordered the blue jacket in size M and got a black one in L. Order {order}.", "I can bring it to a pickup point if that's easier.", "Hi {name}, apologies for the mix-up. I've created a free return label and reserved the right jacket for you."),
        "payment_failed": ("Charged twice for one order", "I see two payments for the same order {order} on my card statement.", "My bank confirms both payments went through.", "Hi {name}, you're right, the second charge was a duplicate authorisation. I've voided it and it will disappear within a few days."),
        "address_change": ("Change of delivery address", "Can I still change the delivery address for order {order}? I'm moving this week.", "New address: 14 Baker Street, flat 2.", "Hi {name}, the order hasn't shipped yet, so I've updated the address. You'll get a new confirmation shortly."),
        "cancel_subscription": ("Cancel my subscription", "Please cancel my subscription at the end of this month. Thanks.", "Will I lose my saved projects?", "Hi {name}, the cancellation is scheduled for the end of the billing period. Your projects stay available for 90 days if you change your mind."),
        "discount_code": ("Promo code not working", "The code SPRING20 is rejected at checkout, but the email said it is valid until Sunday.", "I placed the order anyway, can you apply the discount afterwards?", "Hi {name}, the code only covered the new collection. As a gesture we've refunded 20% of order {order}."),
        "account_locked": ("Account locked", "My account got locked after I entered a wrong code. I can't log in at all.", "I have the order confirmation email if you need proof.", "Hi {name}, I verified your identity and unlocked the account. Please set up two-factor authentication again after logging in."),
        "product_question": ("Is the 65 W charger compatible?", "Does the 65 W charger work with the older X2 laptop?", "And does it work with the car adapter?", "Hi {name}, yes, the 65 W charger works with the X2 and every newer model. The car adapter is sold separately."),
    },
    "pl": {
        "order_status": ("Gdzie jest moje zamówienie {order}?", "Dzień dobry, zamówienie złożone w poniedziałek, a śledzenie nadal pokazuje „etykieta utworzona”. Numer {order}. Czy mogą Państwo sprawdzić?", "Czy są jakieś informacje o zamówieniu {order}? Minęły już trzy dni.", "Dzień dobry {name}, sprawdziliśmy u kuriera: zamówienie {order} wyjechało wczoraj z magazynu i dotrze w ciągu dwóch dni roboczych."),
        "refund": ("Zwrot pieniędzy za zamówienie {order}", "Dzień dobry, słuchawki zostały odesłane dwa tygodnie temu, a zwrotu pieniędzy nadal nie ma. Zamówienie {order}.", "Nadal czekam na zwrot, proszę o sprawdzenie.", "Dzień dobry {name}, paczka zwrotna dotarła i zatwierdziliśmy zwrot środków za zamówienie {order}. Pieniądze pojawią się na karcie w ciągu 3–5 dni roboczych."),
        "delivery_delay": ("Opóźniona dostawa", "Paczka miała przyjść wczoraj i nic nie dotarło. Potrzebuję jej na urodziny w sobotę.", "Kurier pisze teraz „nie znaleziono adresu”. Adres jest poprawny!", "Dzień dobry {name}, przepraszamy za opóźnienie. W sortowni kuriera był zator; poprosiliśmy o priorytetową dostawę jutro przed południem."),
        "invoice": ("Faktura VAT do zamówienia {order}", "Proszę o fakturę VAT do zamówienia {order}. Dane firmy są w koncie.", "Na fakturze jest błędna nazwa firmy, czy można ją poprawić?", "Dzień dobry {name}, poprawiona faktura do zamówienia {order} jest w koncie i została też wysłana e-mailem."),
        "password_reset": ("Nie dochodzi e-mail do resetu hasła", "Trzy razy klikam „nie pamiętam hasła”, ale wiadomość nie przychodzi. Folder spam też sprawdzony.", "Nadal nic. Czy mogą Państwo zresetować hasło?", "Dzień dobry {name}, nasze wiadomości były blokowane po dawnym odbiciu. Odblokowaliśmy adres; proszę spróbować ponownie, link jest ważny godzinę."),
        "warranty": ("Reklamacja: ekspres do kawy", "Ekspres przestał grzać po 8 miesiącach. Jest jeszcze na gwarancji, co należy zrobić?", "Zdjęcia numeru seryjnego wysłane wczoraj.", "Dzień dobry {name}, dziękujemy za zdjęcia. Reklamacja jest zarejestrowana, kurier bezpłatnie odbierze ekspres; etykieta jest w e-mailu."),
        "plan_change": ("Zmiana planu na Business", "Rośniemy i potrzebujemy więcej stanowisk. Jak przejść z planu Plus na Business i czy cena liczona jest proporcjonalnie?", "Czy zmiana może wejść od następnego okresu rozliczeniowego?", "Dzień dobry {name}, tak, dopłata liczona jest proporcjonalnie do dnia. Możemy zmienić plan od razu albo od pierwszego, jak wygodniej."),
        "damaged_item": ("Uszkodzony towar", "Karton był zgnieciony, a szklana pokrywka pęknięta. Zamówienie {order}. Zdjęcia w załączniku.", "Czy trzeba odesłać uszkodzony produkt?", "Dzień dobry {name}, bardzo przepraszamy! Nie trzeba niczego odsyłać, jeszcze dziś wysyłamy nowy egzemplarz do zamówienia {order}."),
        "wrong_item": ("Otrzymany niewłaściwy produkt", "Zamówiona była niebieska kurtka w rozmiarze M, a przyszła czarna w L. Zamówienie {order}.", "Mogę ją zanieść do punktu odbioru, jeśli tak łatwiej.", "Dzień dobry {name}, przepraszamy za pomyłkę. Przygotowaliśmy darmową etykietę zwrotną i zarezerwowaliśmy właściwą kurtkę."),
        "payment_failed": ("Podwójne obciążenie karty", "Na wyciągu widzę dwie płatności za to samo zamówienie {order}.", "Bank potwierdza, że obie płatności przeszły.", "Dzień dobry {name}, druga płatność była zdublowaną autoryzacją. Anulowaliśmy ją, zniknie z wyciągu w ciągu kilku dni."),
        "address_change": ("Zmiana adresu dostawy", "Czy można jeszcze zmienić adres dostawy zamówienia {order}? W tym tygodniu się przeprowadzam.", "Nowy adres: ul. Długa 14/2, Gdańsk.", "Dzień dobry {name}, zamówienie nie zostało jeszcze wysłane, więc zaktualizowaliśmy adres. Za chwilę przyjdzie nowe potwierdzenie."),
        "cancel_subscription": ("Rezygnacja z subskrypcji", "Proszę o anulowanie subskrypcji z końcem miesiąca. Dziękuję.", "Czy zapisane projekty przepadną?", "Dzień dobry {name}, anulowanie zaplanowaliśmy na koniec okresu rozliczeniowego. Projekty zostaną zachowane przez 90 dni."),
        "discount_code": ("Kod rabatowy nie działa", "Kod WIOSNA20 jest odrzucany przy płatności, a w mailu było napisane, że działa do niedzieli.", "Zamówienie i tak zostało złożone. Czy można doliczyć rabat później?", "Dzień dobry {name}, kod dotyczył tylko nowej kolekcji. W ramach przeprosin zwróciliśmy 20% wartości zamówienia {order}."),
        "account_locked": ("Zablokowane konto", "Konto zostało zablokowane po wpisaniu złego kodu. Nie da się w ogóle zalogować.", "Mam e-mail z potwierdzeniem zamówienia, jeśli potrzebny jest dowód.", "Dzień dobry {name}, zweryfikowaliśmy tożsamość i odblokowaliśmy konto. Po zalogowaniu prosimy ponownie włączyć weryfikację dwuetapową."),
        "product_question": ("Czy ładowarka 65 W jest kompatybilna?", "Czy ładowarka 65 W działa ze starszym laptopem X2?", "A czy działa z adapterem samochodowym?", "Dzień dobry {name}, tak, ładowarka 65 W działa z X2 i każdym nowszym modelem. Adapter samochodowy sprzedajemy osobno."),
    },
    "ru": {
        "order_status": ("Где мой заказ {order}?", "Здравствуйте! Заказ {order} оформлен в понедельник, а в отслеживании до сих пор «накладная создана». Проверьте, пожалуйста.", "Есть новости по заказу {order}? Прошло уже три дня.", "Здравствуйте, {name}! Мы уточнили у курьерской службы: заказ {order} вчера покинул склад и придёт в течение двух рабочих дней."),
        "refund": ("Возврат денег за заказ {order}", "Добрый день. Наушники отправлены обратно две недели назад, а деньги так и не пришли. Заказ {order}.", "Всё ещё жду возврат, проверьте, пожалуйста.", "Здравствуйте, {name}! Возврат получен, мы одобрили возврат средств по заказу {order}. Деньги поступят на карту за 3–5 рабочих дней."),
        "delivery_delay": ("Задержка доставки", "Посылка должна была прийти вчера, но ничего нет. Она нужна к дню рождения в субботу.", "Курьер теперь пишет «адрес не найден». Адрес указан верно!", "Здравствуйте, {name}! Извините за задержку. На складе курьерской службы был завал; мы запросили приоритетную доставку завтра до полудня."),
        "invoice": ("Счёт-фактура по заказу {order}", "Пришлите, пожалуйста, счёт-фактуру по заказу {order}. Реквизиты компании есть в личном кабинете.", "В документе неверное название компании, можно исправить?", "Здравствуйте, {name}! Исправленный документ по заказу {order} доступен в личном кабинете и отправлен вам на почту."),
        "password_reset": ("Не приходит письмо для сброса пароля", "Три раза нажимаю «забыли пароль», но письмо не приходит. Спам проверен.", "Всё ещё ничего. Можете сбросить пароль сами?", "Здравствуйте, {name}! Письма на ваш адрес блокировались после старого возврата. Мы сняли блокировку; попробуйте ещё раз, ссылка действует один час."),
        "warranty": ("Гарантийный случай: кофемашина", "Кофемашина перестала греть через 8 месяцев. Гарантия ещё действует, что делать?", "Фото серийного номера отправлены вчера.", "Здравствуйте, {name}! Спасибо за фото. Гарантийная заявка оформлена, курьер бесплатно заберёт кофемашину; этикетка у вас в почте."),
        "plan_change": ("Переход на тариф Business", "Нас становится больше, нужны дополнительные места. Как перейти с тарифа Plus на Business и пересчитывается ли стоимость?", "Можно перейти со следующего расчётного периода?", "Здравствуйте, {name}! Да, доплата считается пропорционально по дням. Можем переключить сейчас или с первого числа, как вам удобнее."),
        "damaged_item": ("Товар пришёл повреждённым", "Коробка смята, стеклянная крышка треснула. Заказ {order}. Фото прилагаю.", "Нужно ли отправлять повреждённый товар обратно?", "Здравствуйте, {name}! Очень жаль! Возвращать ничего не нужно, сегодня отправим замену по заказу {order}."),
        "wrong_item": ("Прислали не тот товар", "Заказана была синяя куртка размера M, а пришла чёрная размера L. Заказ {order}.", "Могу отнести её в пункт выдачи, если так проще.", "Здравствуйте, {name}! Извините за путаницу. Мы оформили бесплатную этикетку для возврата и зарезервировали нужную куртку."),
        "payment_failed": ("Деньги списали дважды", "В выписке по карте два платежа за один и тот же заказ {order}.", "Банк подтверждает, что прошли оба платежа.", "Здравствуйте, {name}! Второе списание было дублирующей авторизацией. Мы её отменили, деньги вернутся в течение нескольких дней."),
        "address_change": ("Изменить адрес доставки", "Можно ещё изменить адрес доставки заказа {order}? На этой неделе переезд.", "Новый адрес: ул. Баумана, д. 14, кв. 2, Казань.", "Здравствуйте, {name}! Заказ ещё не отправлен, мы обновили адрес. Новое подтверждение придёт в ближайшее время."),
        "cancel_subscription": ("Отмена подписки", "Прошу отменить подписку с конца месяца. Спасибо.", "Сохранятся ли мои проекты?", "Здравствуйте, {name}! Отмена запланирована на конец расчётного периода. Проекты хранятся ещё 90 дней, если передумаете."),
        "discount_code": ("Не работает промокод", "Промокод ВЕСНА20 при оплате «недействителен», а в письме сказано, что он действует до воскресенья.", "Заказ всё равно оформлен. Можно применить скидку задним числом?", "Здравствуйте, {name}! Промокод действовал только на новую коллекцию. В качестве извинения мы вернули 20% стоимости заказа {order}."),
        "account_locked": ("Аккаунт заблокирован", "Аккаунт заблокировали после ввода неверного кода. Войти вообще не получается.", "Есть письмо с подтверждением заказа, если нужно.", "Здравствуйте, {name}! Мы проверили данные и разблокировали аккаунт. После входа, пожалуйста, заново включите двухфакторную аутентификацию."),
        "product_question": ("Подойдёт ли зарядка на 65 Вт?", "Работает ли зарядка на 65 Вт со старым ноутбуком X2?", "А с автомобильным адаптером она работает?", "Здравствуйте, {name}! Да, зарядка на 65 Вт подходит к X2 и всем более новым моделям. Автомобильный адаптер продаётся отдельно."),
    },
}
TOPICS = tuple(TEXTS["en"])

THANKS = {
    "en": ["Thank you, that solved it!", "Great, thanks for the quick help.", "Perfect, it arrived today. Thanks!"],
    "pl": ["Dziękuję, wszystko działa!", "Super, dzięki za szybką pomoc.", "Dotarło dzisiaj, dziękuję!"],
    "ru": ["Спасибо, всё получилось!", "Отлично, спасибо за быструю помощь.", "Сегодня всё пришло, спасибо!"],
}
ACK = {
    "en": ["Thanks, {name}. I'm checking this with the warehouse and will get back to you today.",
           "Hi {name}, thanks for getting in touch. I've passed this to the right team and will update you shortly.",
           "Hi {name}, I'm looking into order {order} right now."],
    "pl": ["Dziękujemy, {name}. Sprawdzamy to z magazynem i wrócimy z odpowiedzią jeszcze dziś.",
           "Dzień dobry {name}, dziękujemy za wiadomość. Sprawa trafiła do właściwego działu, wkrótce damy znać.",
           "Dzień dobry {name}, już sprawdzamy zamówienie {order}."],
    "ru": ["Спасибо, {name}. Уточняем на складе и ответим сегодня.",
           "Здравствуйте, {name}! Спасибо за обращение. Вопрос передан профильному отделу, скоро вернёмся с ответом.",
           "Здравствуйте, {name}! Уже проверяем заказ {order}."],
}
ASK = {
    "en": ["Could you send a photo of the label on the box, {name}?", "Could you confirm the email address you used for order {order}?"],
    "pl": ["Prosimy o przesłanie zdjęcia etykiety z paczki.", "Prosimy o potwierdzenie adresu e-mail użytego przy zamówieniu {order}."],
    "ru": ["Пришлите, пожалуйста, фото этикетки на коробке.", "Подтвердите, пожалуйста, адрес почты, указанный в заказе {order}."],
}
CLOSING = {
    "en": "You're welcome, {name}! Just reply here if anything else comes up.",
    "pl": "Cieszymy się, że mogliśmy pomóc, {name}! Wystarczy odpisać, jeśli coś jeszcze będzie potrzebne.",
    "ru": "Рады помочь, {name}! Просто ответьте, если понадобится что-то ещё.",
}
VOICEMAIL = {"en": "Voicemail transcript", "pl": "Transkrypcja poczty głosowej", "ru": "Расшифровка голосового сообщения"}
CALLBACK = {
    "en": "Called the customer back and explained the next steps.",
    "pl": "Oddzwoniliśmy do klienta i wyjaśniliśmy kolejne kroki.",
    "ru": "Перезвонили клиенту и объяснили дальнейшие шаги.",
}
NOTES = [
    "Courier case opened: DPD 48213, waiting for their answer.",
    "Business plan customer: keep them in the loop.",
    "Payment logs checked: duplicate authorisation confirmed.",
    "Waiting for the warehouse to confirm stock.",
    "Zgłoszone do magazynu, czekamy na odpowiedź.",
    "Sprawdziłam historię zamówień, klient zamawia regularnie.",
    "Постоянный клиент, можно предложить скидку 10% на следующий заказ.",
    "Передала вопрос в бухгалтерию.",
]
FAILURES = {
    K.SMS: "Twilio error 30003: Unreachable destination handset.",
    K.WHATSAPP: "Twilio error 63016: outside the 24-hour window; a template message is required.",
}
