# Every way out a script might try at run time; each outcome is reported, none may succeed.
# (Dunder escapes such as ().__class__.__base__.__subclasses__(), eval and exec do not even compile:
# tests/unit/test_scripting_python.py.)
import datetime
import json

tried = {}


def attempt(name, f):
    try:
        tried[name] = "got " + str(f())
    except Exception as e:
        tried[name] = "refused: " + str(e)[:80]


def import_os():
    import os

    return os.environ.get("NAFTIKO_TEST_SECRET")


def import_socket():
    import socket

    s = socket.create_connection(("127.0.0.1", context["listener_port"]))
    return s


def import_subprocess():
    import subprocess

    return subprocess.run(["touch", context["canary"]])


attempt("open", lambda: open(context["canary"], "w"))
attempt("os", import_os)
attempt("socket", import_socket)
attempt("subprocess", import_subprocess)
attempt("datetime.sys", lambda: datetime.sys.modules["os"].environ)
attempt("json.decoder", lambda: json.decoder.scanstring)
attempt("format", lambda: "{0.real}".format(1))  # noqa: UP030, UP032 - the format-string attack, on purpose
attempt("globals", lambda: globals())
attempt("getattr", lambda: getattr(attempt, "func_globals"))  # noqa: B009 - getattr itself is the attempt
attempt("leave-global", lambda: tried.setdefault("note", "a dict of this call only"))
result = tried
