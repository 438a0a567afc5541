"""The method packages' commands on the ``reprozoo`` command line, imported only when used.

:class:`LazyGroup` lists each package command by the name and help that the static registry index
(:mod:`reprozoo.runtime.registry_index`) holds, and builds the real command (importing its package)
only when the command line names it. :func:`write_registry_index` regenerates that index.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from reprozoo.errors import MissingDependencyError


class IndexedCommand(TyperCommand):
    """A method package's command as the index lists it (name, help); replaced before it runs."""

    def __init__(self, name: str, packages: list[str], help: str) -> None:
        super().__init__(name=name, help=help)
        self.packages = packages


class LazyGroup(TyperGroup):
    """The root group: method packages' commands come from the index and are built (their package
    imported) only when the command line names them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        from reprozoo.runtime.registry_index import COMMANDS

        for name, info in COMMANDS.items():
            self.commands.setdefault(name, IndexedCommand(name, info["packages"], info["help"]))

    def resolve_command(self, ctx, args):
        listed = self.commands.get(args[0]) if args else None
        if isinstance(listed, IndexedCommand):
            self.commands[listed.name] = package_command(listed.name, listed.packages)
        return super().resolve_command(ctx, args)


def _registered(packages: list[str], *, warn: bool = True):
    """A typer group holding what the ``cli`` modules of ``packages`` register."""
    from reprozoo.runtime.registry import import_optional, import_or_warn

    sub = typer.Typer()
    sub.callback()(lambda: None)  # a group even when a single command is registered
    for package in packages:
        module = (import_or_warn if warn else import_optional)(f"reprozoo.{package}.cli")
        if module:
            module.register(sub)
    return typer.main.get_group(sub)


def package_command(name: str, packages: list[str]):
    """The click command ``name`` that the ``cli`` modules of ``packages`` register."""
    from reprozoo.runtime.registry import BROKEN

    command = _registered(packages).commands.get(name)
    if command is None:
        why = "; ".join(f"{m}: {e}" for m, e in BROKEN.items()
                        if any(m.startswith(f"reprozoo.{p}.") for p in packages)) or "no package registers it"
        raise MissingDependencyError(f"command '{name}' is unavailable ({why})")
    return command


def scan_commands() -> dict[str, dict]:
    """The ``COMMANDS`` table of the registry index: what every package's ``cli.register`` adds."""
    from reprozoo.runtime.registry import method_packages

    table: dict[str, dict] = {}
    for package in sorted(method_packages()):
        for name, command in _registered([package], warn=False).commands.items():
            entry = table.setdefault(name, {"packages": [], "help": command.help or ""})
            entry["packages"].append(package)
    return dict(sorted(table.items()))


def write_registry_index(path: Path | None = None) -> Path:
    """Regenerate :mod:`reprozoo.runtime.registry_index` from what the packages register."""
    import pprint

    from reprozoo.runtime import registry_index
    from reprozoo.runtime.registry import scan

    tables = {**scan(), "COMMANDS": scan_commands()}
    path = path or Path(registry_index.__file__)
    body = "\n\n".join(f"{k} = {pprint.pformat(v, width=110, sort_dicts=False)}" for k, v in tables.items())
    main = ('if __name__ == "__main__":\n    from reprozoo.cli_commands import write_registry_index\n\n'
            '    print(f"wrote {write_registry_index()}")\n')
    path.write_text(f'"""{registry_index.__doc__.strip()}\n"""\n\n# fmt: off\n{body}\n\n{main}')
    return path


# ---------------------------------------------------------------- output checks shared by the commands
def check_new_file(path: Path, flag: str, overwrite: bool = False) -> None:
    """Before any work: ``path`` can be written as a file. An existing file is replaced only with
    ``--overwrite``; a folder, a dangling symbolic link or an unwritable place is a one-line error."""
    import os

    from reprozoo.errors import OutputError, OutputExistsError

    if path.is_symlink() and not path.exists():
        raise OutputError(f"{flag} {path} is a dangling symbolic link (to {os.readlink(path)}); remove it or "
                          "pass another path")
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; pass a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{flag} {path} already exists; pass --overwrite to replace it")
    check_writable_place(path, flag)


def check_writable_place(path: Path, flag: str) -> None:
    """The nearest existing folder above ``path`` is a folder we may write into."""
    import os

    from reprozoo.errors import OutputError

    p = path.parent
    while not p.exists() and p != p.parent:
        if p.is_symlink():
            raise OutputError(f"{flag} {path}: {p} is a dangling symbolic link")
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"{flag} {path}: {p} is a file, not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: {p} is not writable")


def check_output_folder(path: Path, flag: str) -> None:
    """``path`` is a folder or can be created as one (not a file, not a dangling symbolic link)."""
    import os

    from reprozoo.errors import OutputError

    if path.is_symlink() and not path.exists():
        raise OutputError(f"{flag} {path} is a dangling symbolic link (to {os.readlink(path)}); remove it or "
                          "pass another folder")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file; pass a folder")
    if not path.exists():
        check_writable_place(path, flag)
