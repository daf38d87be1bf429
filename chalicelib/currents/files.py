"""Which Currents files a path names: one `.avro` file, or every `.avro` file under a folder
(Currents' own layout, `event_type=<type>/date=.../*.avro`), in a stable order."""

from __future__ import annotations

from pathlib import Path


def avro_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.avro") if p.is_file())
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    return [path]
