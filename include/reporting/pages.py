"""The report plugin's small pages: a refusal, a page not found, a run not produced yet.

Standalone HTML with one inline ``<style>`` and no script (the plugin's Content-Security-Policy
allows nothing else), in the Airflow 3 UI's colours: its ``brand`` and ``gray`` palettes (the
theme of ``airflow/ui``), on a white card like its dialogs. Every text and link is escaped here;
callers pass plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Literal

Tone = Literal["info", "warn", "error"]

# brand.600 #3c5b89, brand.700 #294874, brand.50 #f5f9fc, gray.200 #e4e4e7, gray.500 #71717a,
# gray.900 #18181b; the tone stripe: brand.600, yellow.600 #ca8a04, red.600 #dc2626.
_STYLE = """
html{color-scheme:light}
body{margin:0;background:#f5f9fc;color:#18181b;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:560px;margin:48px auto;padding:0 16px}
.card{background:#fff;border:1px solid #e4e4e7;border-top:4px solid #3c5b89;border-radius:8px;padding:20px 24px;
box-shadow:0 1px 3px rgba(24,24,27,.08)}
.card.warn{border-top-color:#ca8a04} .card.error{border-top-color:#dc2626}
.code{color:#71717a;font-size:12px;font-weight:600;letter-spacing:.06em;text-transform:uppercase;margin:0}
h1{font-size:20px;font-weight:600;margin:4px 0 8px} p{margin:8px 0}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f4f4f5;padding:1px 4px;
border-radius:4px;overflow-wrap:anywhere}
nav{margin-top:16px;display:flex;gap:8px;flex-wrap:wrap}
nav a{display:inline-block;padding:6px 14px;border-radius:6px;border:1px solid #3c5b89;color:#3c5b89;
text-decoration:none;font-weight:600}
nav a:first-child{background:#3c5b89;color:#fff} nav a:hover{border-color:#294874}
nav a:first-child:hover{background:#294874}
"""


def render_message_page(
    *,
    heading: str,
    paragraphs: Sequence[str],
    links: Sequence[tuple[str, str]] = (),
    code: str = "",
    tone: Tone = "info",
    facts: Sequence[tuple[str, str]] = (),
) -> str:
    """One card: an optional status line (``code``), a heading, paragraphs, ``label: value`` facts
    shown as code, and links as buttons (``(href, label)``; the first is the primary one)."""
    parts = [f'<p class="code">{escape(code)}</p>' if code else "", f"<h1>{escape(heading)}</h1>"]
    parts += [f"<p>{escape(text)}</p>" for text in paragraphs]
    parts += [f"<p>{escape(label)}: <code>{escape(value)}</code></p>" for label, value in facts]
    if links:
        buttons = "".join(f'<a href="{escape(href, quote=True)}">{escape(label)}</a>' for href, label in links)
        parts.append(f"<nav>{buttons}</nav>")
    body = "".join(parts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(heading)} - Lean runs</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="card {tone}">{body}</div></main></body></html>\n'
    )
