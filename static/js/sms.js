// SMS segment counter under the composer (channels_inbound/twilio panel). A message that fits
// GSM-7 takes 160 characters in one segment and 153 per segment when split; anything else is
// sent as UCS-2: 70 in one, 67 per segment (characters outside the BMP count twice).
const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED = "^{}\\[~]|€\f";

export function segments(text) {
  let gsmUnits = 0;
  let gsm = true;
  for (const ch of text) {
    if (GSM.includes(ch)) gsmUnits += 1;
    else if (GSM_EXTENDED.includes(ch)) gsmUnits += 2;
    else { gsm = false; break; }
  }
  if (gsm) {
    return { encoding: "GSM-7", chars: gsmUnits, segments: gsmUnits <= 160 ? (gsmUnits ? 1 : 0) : Math.ceil(gsmUnits / 153) };
  }
  const units = text.length; // UTF-16 code units: astral characters (emoji) take two
  return { encoding: "UCS-2", chars: units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}

const counter = document.querySelector("[data-sms-segments]");
const box = document.querySelector("[data-composer-text]");
if (counter && box) {
  const update = () => {
    const result = segments(box.value);
    counter.textContent = counter.dataset.label
      .replace("%(chars)s", result.chars).replace("%(segments)s", result.segments).replace("%(encoding)s", result.encoding);
    counter.dataset.segments = String(result.segments);
  };
  box.addEventListener("input", update);
  update();
}
