"""Import the application and find its Huey object.

The seed's rule: the consumer imports the module it is pointed at, and with it
every task module that module imports. Each way this can fail gets one line
saying what is wrong and how to fix it.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback

from huey.api import Huey


class LoadError(Exception):
    """The app path cannot give a Huey object; the text is for the user."""


def load_huey(path: str) -> Huey:
    module_name, _, attr = path.rpartition('.')
    if not module_name or not attr or '' in path.split('.'):
        raise LoadError('%r is not an import path: give module.attribute, e.g. main.huey' % path)
    # Like `python -m`, import from the current directory first.
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = _import(module_name)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise LoadError('module %r (%s) has no attribute %r: point the consumer at the '
                        'name your Huey object is bound to' %
                        (module_name, getattr(module, '__file__', '?'), attr)) from None
    if not isinstance(obj, Huey):
        raise LoadError('%s is a %s, not a Huey object: point the consumer at your Huey '
                        'instance, e.g. main.huey' % (path, type(obj).__name__))
    return obj


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module asked for (or a package on its path) is "not found";
        # any other missing name is an import inside the app: show where.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + '.')):
            raise LoadError('no module named %r (looked in %s): run the consumer from the '
                            'directory that holds %s.py, or put it on PYTHONPATH'
                            % (exc.name, os.getcwd(), exc.name.replace('.', '/'))) from None
        raise LoadError('importing %r failed: %s\n%s' % (
            module_name, exc, traceback.format_exc().rstrip())) from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise LoadError('importing %r raised %s: %s\n%s' % (
            module_name, type(exc).__name__, exc, traceback.format_exc().rstrip())) from None
