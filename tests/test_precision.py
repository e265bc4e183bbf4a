import pytest

from ganzoo import precision


def test_auto_follows_native_support(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    assert precision.cpu_bf16_support().native
    assert precision.resolve_cpu_precision("auto") == "bf16"
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    assert not precision.cpu_bf16_support().native
    assert precision.resolve_cpu_precision("auto") == "fp32"


def test_explicit_choices_pass_through_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    assert precision.resolve_cpu_precision("bf16") == "bf16"
    assert precision.resolve_cpu_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_cpu_precision("fp16")
    monkeypatch.setenv(precision.OVERRIDE_ENV, "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        precision.cpu_bf16_support()


def test_detection_gives_a_reason(monkeypatch):
    monkeypatch.delenv(precision.OVERRIDE_ENV, raising=False)
    support = precision.cpu_bf16_support()
    assert isinstance(support.native, bool) and support.reason
