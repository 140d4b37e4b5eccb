"""Find the App in `path/to/app.py[:attr]` or `package.module[:attr]`.

Loading defines the pipeline and never runs it: a file that starts its app (`app.run()`,
`ssc.start()`) is executed up to that call. A file that fails to load is a ConfigError
naming where it failed."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from types import ModuleType

from kstream.app import App, AppStarted
from kstream.errors import ConfigError


def load_app(spec: str) -> App:
    target, _, attr = spec.partition(":")
    App.loading = True
    try:
        module = _execute(spec, target)
    except AppStarted as started:
        return started.app
    finally:
        App.loading = False
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, App):
            raise ConfigError(f"APP {spec!r}: {attr!r} is not a kstream.App")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) != 1:
        found = "none" if not apps else f"{len(apps)}"
        raise ConfigError(
            f"APP {spec!r}: expected one kstream.App, found {found}; name it as {target}:attr"
        )
    return apps[0]


def _execute(spec: str, target: str) -> ModuleType:
    """Import the module or run the file; what it raises becomes one ConfigError."""
    is_file = target.endswith(".py") or os.sep in target
    if is_file and not os.path.isfile(target):
        raise ConfigError(f"APP {spec!r}: no such file {target!r}")
    try:
        return _run_file(target) if is_file else importlib.import_module(target)
    except SyntaxError as e:
        at = f"{e.filename}:{e.lineno}"
        raise ConfigError(f"APP {spec!r} failed at {at}: {type(e).__name__}: {e.msg}") from None
    except Exception as e:
        missing = isinstance(e, ModuleNotFoundError) and f"{target}.".startswith(f"{e.name}.")
        if missing and not is_file:  # the module itself, not one that it imports
            raise ConfigError(f"APP {spec!r}: cannot import {target!r} ({e})") from None
        what = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
        raise ConfigError(f"APP {spec!r} failed at {_where(e)}: {what}") from None


def _run_file(path: str) -> ModuleType:
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    name = os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def _where(error: BaseException) -> str:
    """file:line of the module-level code that was running (the pipeline file's, or that
    of a module it imports): the user's line, not one inside kstream or a library."""
    frames = traceback.extract_tb(error.__traceback__)
    top = [f for f in frames if f.name == "<module>" and not f.filename.startswith("<")]
    frame = (top or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"
