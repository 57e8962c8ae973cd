"""``prepare merge``: one dataset from the ``--shard i/n`` parts of one prepare job."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from pathlib import Path

from hyperface import fileio
from hyperface.data.shards import FORMAT_VERSION, MANIFEST, load_manifest, read_shard_json, sum_counts

__all__ = ["merge"]


def merge(out: str | Path, parts: Sequence[str | Path]) -> dict:
    """Write ``out/manifest.json`` listing the shards of several prepared folders of one job.

    The parts must share options, sources and plan (e.g. the ``--shard i/n`` runs of one command);
    shards stay where they are and are referenced by relative path. A shard present in several parts
    is taken once. Parts written by older code merge too (each shard's ``shard.json`` names its layout).
    Returns the merged manifest (``complete`` says whether every planned shard is in).
    """
    out = Path(out)
    if not parts:
        raise ValueError("merge needs at least one prepared folder")
    manifests = []
    for p in parts:
        m, base = load_manifest(p)
        if "parts" in m:
            raise ValueError(f"{p}: a combined manifest cannot be merged again; merge the prepared folders")
        manifests.append((m, base))
    first = manifests[0][0]
    for (m, base), p in zip(manifests[1:], parts[1:]):
        for key in ("options", "plan"):
            a = first[key] if key == "options" else first[key]["fingerprint"]
            b = m[key] if key == "options" else m[key]["fingerprint"]
            if a != b:
                raise ValueError(f"{p}: its {key} differ from {parts[0]}'s; only parts of one job merge")
        if [s["name"] for s in m["sources"]] != [s["name"] for s in first["sources"]]:
            raise ValueError(f"{p}: its sources differ from {parts[0]}'s; only parts of one job merge")
        if m.get("pixels") != first.get("pixels"):  # a part prepared before 0.20 holds 1-based labels
            raise ValueError(f"{p}: its pixel coordinates ({m.get('pixels', 'before 0.20')}) differ from "
                             f"{parts[0]}'s ({first.get('pixels', 'before 0.20')}); only parts of one job merge")
    out.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, dict] = {}
    skipped: list[dict] = []
    seen_skips: set[str] = set()
    by_source: dict[str, list[dict]] = {}
    names = [s["name"] for s in first["sources"]]
    for m, base in manifests:
        for s in m.get("skipped", []):
            k = repr(sorted(s.items()))
            if k not in seen_skips:
                seen_skips.add(k)
                skipped.append(s)
        for entry in m["shards"]:
            if entry["name"] in by_name:
                continue
            d = (base / entry["path"]).resolve()
            meta = read_shard_json(d)
            by_name[entry["name"]] = {"name": entry["name"], "path": os.path.relpath(d, out.resolve()),
                                      "samples": meta["samples"], "images": len(meta["images"])}
            by_source.setdefault(names[meta["source"]], []).append(meta["counts"])
    order = {name: k for k, name in enumerate(first["plan"]["shard_names"])}
    shards = sorted(by_name.values(), key=lambda e: order.get(e["name"], len(order)))
    counts = sum_counts([c for cs in by_source.values() for c in cs])
    counts["by_source"] = {name: sum_counts(cs) for name, cs in by_source.items()}
    manifest = dict(first)
    manifest.update({
        "format_version": FORMAT_VERSION,  # parts prepared before an upgrade keep their shards' layout
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "merged_from": [str(Path(p)) for p in parts],
        "plan": dict(first["plan"], shard_spec=[0, 1]),
        "complete": len(shards) == first["plan"]["shards"],
        "shards": shards,
        "counts": counts,
        "skipped": skipped,
    })
    fileio.write_json(out / MANIFEST, manifest)
    return manifest
