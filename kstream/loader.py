"""Find the App in `path/to/app.py[:attr]` or `package.module[:attr]`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from kstream.app import App
from kstream.errors import ConfigError


def load_app(spec: str) -> App:
    target, _, attr = spec.partition(":")
    if target.endswith(".py") or os.sep in target:
        if not os.path.isfile(target):
            raise ConfigError(f"APP {spec!r}: no such file {target!r}")
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        name = os.path.splitext(os.path.basename(target))[0]
        module_spec = importlib.util.spec_from_file_location(name, target)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise ConfigError(f"APP {spec!r}: cannot import {target!r} ({e})") from None
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
