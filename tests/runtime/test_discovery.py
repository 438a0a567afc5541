import sys
import types

from reprozoo.runtime import registry


def test_a_broken_package_warns_once_and_others_keep_working(monkeypatch, capsys):
    def broken_import(name):
        if name == "reprozoo._fake_broken":
            raise ImportError("No module named 'somelib'", name="somelib")
        return types.ModuleType(name)

    monkeypatch.setattr(registry.importlib, "import_module", broken_import)
    monkeypatch.setattr(registry, "BROKEN", {})
    assert registry.import_or_warn("reprozoo._fake_broken") is False
    assert registry.import_or_warn("reprozoo._fake_broken") is False
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: reprozoo._fake_broken is unavailable (ImportError: No module named 'somelib')"]
    assert isinstance(registry.import_or_warn("reprozoo._fake_ok"), types.ModuleType)


def test_a_missing_submodule_is_not_an_error():
    assert registry.import_or_warn("reprozoo.runtime._no_such_module") is None
    assert "reprozoo.runtime._no_such_module" not in sys.modules
