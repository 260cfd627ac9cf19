from django.db import migrations, models
import django.db.models.deletion


def fill_customer(apps, schema_editor):
    TicketThread = apps.get_model("tickets", "TicketThread")
    for thread in TicketThread.objects.select_related("ticket").iterator():
        thread.customer_id = thread.ticket.customer_id
        thread.save(update_fields=["customer"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_identity_claim_constraint"),
        ("tickets", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="ticketthread", name="ticket_thread_unique"),
        migrations.AddField(
            model_name="ticketthread",
            name="customer",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.customer"),
        ),
        migrations.RunPython(fill_customer, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ticketthread",
            name="customer",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.customer"),
        ),
        migrations.AddConstraint(
            model_name="ticketthread",
            constraint=models.UniqueConstraint(fields=("channel", "customer", "key"), name="ticket_thread_unique"),
        ),
    ]
