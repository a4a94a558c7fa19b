"""The sign-in page: server-rendered, no script, no external asset, accessible (a label per
field, the error announced through role="alert" and tied to the fields it concerns)."""

from __future__ import annotations

from html import escape

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#172b4d}
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:6px;
box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.5rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}
input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;
font-size:1rem;border:1px solid #6b778c;border-radius:4px}
input:focus,button:focus{outline:3px solid #0052cc;outline-offset:2px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#0052cc;color:#fff;
border:0;border-radius:4px;cursor:pointer}
.error{background:#ffebe6;border-left:4px solid #bf2600;padding:.75rem;margin-bottom:1rem}
.note{font-size:.9rem;color:#42526e}
"""


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} — Delivery Performance Platform</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def login_page(*, csrf_token: str, next_url: str, email: str = "", error: str | None = None) -> str:
    described = ' aria-describedby="login-error" aria-invalid="true"' if error else ""
    alert = (
        f'<div class="error" id="login-error" role="alert"><p>{escape(error)}</p></div>\n'
        if error
        else ""
    )
    autofocus_email = "" if email else " autofocus"
    autofocus_password = " autofocus" if email else ""
    return page(
        "Sign in",
        "<h1>Sign in</h1>\n"
        f"{alert}"
        '<form method="post" action="/login">\n'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">\n'
        f'<input type="hidden" name="next" value="{escape(next_url)}">\n'
        '<label for="email">Email address</label>\n'
        f'<input id="email" name="email" type="email" autocomplete="username" required'
        f' value="{escape(email)}"{described}{autofocus_email}>\n'
        '<label for="password">Password</label>\n'
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        f" required{described}{autofocus_password}>\n"
        '<button type="submit">Sign in</button>\n'
        "</form>\n"
        '<p class="note">Access is recorded. Ask a platform administrator for an account.</p>',
    )


def message_page(
    title: str, message: str, *, link: str = "/login", link_text: str = "Sign in"
) -> str:
    return page(
        title,
        f'<h1>{escape(title)}</h1>\n<p role="alert">{escape(message)}</p>\n'
        f'<p><a href="{escape(link)}">{escape(link_text)}</a></p>',
    )
