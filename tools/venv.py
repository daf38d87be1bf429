"""What `make` asks before it builds or uses `.venv` (run with `$(PYTHON)`, so it is written for
any Python 3: it has to run on the old one to say it is too old).

    python tools/venv.py check .venv   # a fatal problem on stdout (make stops with it), or nothing;
                                       # a .venv made by another Python is removed, said on stderr
    .venv/bin/python tools/venv.py link  # the project on the venv's path (.pth), so that
                                         # `.venv/bin/python -m chalicelib` works from any directory
"""
# %-formatting and tuple concatenation on purpose: this file must run on old Pythons.
# ruff: noqa: UP031, RUF005

import os
import shutil
import sys

NEED = (3, 11)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTH = "braze-personalize-recs.pth"


def venv_version(venv):
    """The major.minor of the Python that made `venv` (from its pyvenv.cfg), or None."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return tuple(int(part) for part in value.strip().split(".")[:2])
    return None


def check(venv):
    here = sys.version_info[:2]
    if here < NEED:
        print(
            "this project needs Python %d.%d or newer; %s is %d.%d: "
            "run make with PYTHON=python3.11 (or newer)" % (NEED + (sys.executable,) + here)
        )
        return
    made_by = venv_version(venv)
    broken = os.path.isdir(venv) and not os.path.exists(os.path.join(venv, "bin", "python"))
    if os.path.isdir(venv) and (broken or made_by != here):
        reason = (
            "it has no bin/python"
            if broken
            else "it was made by Python %s"
            % (".".join(str(n) for n in made_by) if made_by else "unknown")
        )
        sys.stderr.write("rebuilding %s with Python %d.%d: %s\n" % ((venv,) + here + (reason,)))
        shutil.rmtree(venv)


def link():
    import sysconfig  # noqa: PLC0415 - only under the venv's own Python

    path = os.path.join(sysconfig.get_paths()["purelib"], PTH)
    with open(path, "w") as fh:
        fh.write(ROOT + "\n")


def main(argv):
    if argv[1:2] == ["check"]:
        check(argv[2] if len(argv) > 2 else ".venv")
    elif argv[1:2] == ["link"]:
        link()
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
