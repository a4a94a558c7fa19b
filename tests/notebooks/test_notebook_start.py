"""How a dashboard kernel starts (``dpp_lib.notebook.preheat``): warm up and wait only in a
kernel Voila preheats; a kernel started for a waiting viewer goes straight to the page. And
a kernel skips jsonschema's IRI grammar, which costs every kernel ~0.8 s at import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import voila.utils

from dpp_lib import notebook


def test_a_kernel_started_for_a_waiting_viewer_neither_warms_up_nor_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(voila.utils, "wait_for_request", lambda: calls.append("wait"))
    for value in (None, "False"):
        if value is None:
            monkeypatch.delenv("VOILA_PREHEAT", raising=False)
        else:
            monkeypatch.setenv("VOILA_PREHEAT", value)
        assert not notebook.preheating()
        notebook.preheat(lambda: calls.append("warm up"))
    assert calls == []


def test_a_preheated_kernel_warms_up_then_waits_for_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setattr(voila.utils, "wait_for_request", lambda: calls.append("wait"))
    assert notebook.preheating()
    notebook.preheat(lambda: calls.append("warm up"))
    assert calls == ["warm up", "wait"]


def _loaded(first: str) -> str:
    code = (
        f"{first}\nimport sys\nfrom dpp_lib import notebook\nimport jsonschema\n"
        "print('rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is not None,"
        " 'iri' in jsonschema.FormatChecker().checkers)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_a_kernel_goes_without_the_iri_grammar_and_other_processes_keep_it() -> None:
    assert _loaded("import ipykernel") == "False False"  # a kernel: not loaded, no check
    assert _loaded("") == "True True"  # a server or a test process: untouched
