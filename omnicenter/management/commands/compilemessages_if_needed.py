from __future__ import annotations

import shutil

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile the project's .po catalogs when a .mo is missing or older (needs gettext's msgfmt)."

    def handle(self, *args, **options):
        stale = []
        for locale_dir in settings.LOCALE_PATHS:
            for po in locale_dir.glob("*/LC_MESSAGES/*.po"):
                mo = po.with_suffix(".mo")
                if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
                    stale.append(po)
        if not stale:
            return
        if shutil.which("msgfmt") is None:
            self.stderr.write("gettext (msgfmt) is not installed: pages stay in English. apt-get install gettext")
            return
        call_command("compilemessages", locale=sorted({p.parent.parent.name for p in stale}), ignore_patterns=[".venv"], verbosity=0)
