"""``hyperface prepare``: build training shards; ``prepare merge``, ``preview`` and ``turn`` beside it.

    hyperface prepare --source pts:DATA/300w/lfpw --source negatives:DATA/negatives --out data/genface
    hyperface prepare --source ... --out part0 --shard 0/2        # one half, e.g. on another machine
    hyperface prepare merge data/genface part0 part1              # one dataset from the parts
    hyperface prepare preview data/genface --out sheet.png        # a contact sheet to check by eye
    hyperface prepare preview data/genface --out m.png --augment mask=1   # ... after augmentation
    hyperface prepare turn turned pts:DATA/300w/lfpw/trainset      # turned copies of 68-point faces
    hyperface prepare --mode hard-negatives --teacher runs/x/best.safetensors \
        --source negatives:DATA/negatives/photos --out data/hard-negatives   # a detector's false positives
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hyperface.cli.data import pixel_count
from hyperface.data.aligned import ALIGN_BY
from hyperface.data.candidates import MAX_CROP_PIXELS
from hyperface.data.images import MAX_IMAGE_PIXELS, pixel_limits
from hyperface.data.preview import KINDS
from hyperface.data.prepare import PrepareOptions
from hyperface.data.sampling import PREPARE_MODES
from hyperface.data.splits import DEFAULT_VAL_FRACTION
from hyperface.data.turning import TurnPlan

_D = PrepareOptions()


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.allow_abbrev = False  # the merge/preview sub-commands have options the main form lacks
    parser.add_argument("--source", action="append", default=[], metavar="FORMAT:PATH[?opt=v]",
                        help="a dataset to read (repeat for several); formats: 'hyperface data check --help'; "
                             "videos: 300vw:PATH?every=10 keeps every 10th annotated frame")
    parser.add_argument("--out", type=Path, help="output folder (re-running with the same options resumes)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one per core)")
    parser.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                        help="prepare only the i-th of n parts (merge the parts with 'prepare merge')")
    parser.add_argument("--mode", default=_D.mode, choices=PREPARE_MODES,
                        help="candidates: labelled candidate crops (stage one); aligned: one crop per face aligned "
                             "by its five points (stage two; use --crop-size 120 --context 1.25); hard-negatives: "
                             "the --teacher detector's false positives on images with every face annotated, as "
                             "non-face crops (docs/training.md, 'Hard negatives')")
    parser.add_argument("--teacher", default=_D.teacher, metavar="none|bundled|WEIGHTS",
                        help="aligned mode: align faces that have no points (gender-only sources) by this "
                             "stage-one model's points; hard-negatives mode: the detector whose false positives "
                             "are mined")
    parser.add_argument("--align-by", default=_D.align_by, choices=ALIGN_BY,
                        help="aligned mode: align each face by its own five points (the teacher's for faces "
                             "without), or 'pipeline': by the bundled pipeline's stage-two points for it, as the "
                             "fine landmark network sees faces at inference (labels stay the face's own)")
    parser.add_argument("--teacher-threshold", type=float, default=_D.teacher_threshold,
                        help="hard-negatives mode: the detector's score threshold (a detection at or above it counts)")
    parser.add_argument("--teacher-proposals", default=_D.teacher_proposals, metavar="SOURCE",
                        help="hard-negatives: the detector's candidate source (fast, or fast:DIR for networks of "
                             "train-proposals --out DIR; detector or detector:PATH)")
    parser.add_argument("--teacher-min-face", type=float, default=_D.teacher_min_face,
                        help="hard-negatives mode: the smallest face (pixels) the detector looks for")
    g = parser.add_argument_group("crops")
    g.add_argument("--crop-size", type=int, default=_D.crop_size,
                   help="stored crop side; about 1.25 x the model input leaves room for augmentation")
    g.add_argument("--context", type=float, default=_D.context, help="crop = candidate box enlarged by this")
    g.add_argument("--point-set", default=_D.point_set, help="target landmark set (ibug68, aflw21, five)")
    g = parser.add_argument_group("labels by overlap (IoU with the best-matching face)")
    g.add_argument("--pos-iou", type=float, default=_D.pos_iou, help="face above this")
    g.add_argument("--neg-iou", type=float, default=_D.neg_iou, help="non-face below this (the study: ~0.1)")
    g.add_argument("--landmark-iou", type=float, default=_D.landmark_iou, help="landmarks, visibility above this")
    g.add_argument("--attr-iou", type=float, default=_D.attr_iou, help="pose, gender above this")
    g.add_argument("--contain-fraction", type=float, default=_D.contain_fraction,
                   help="drop a candidate that covers more than this share of another face")
    g = parser.add_argument_group("balance")
    g.add_argument("--positives-per-face", type=int, default=_D.positives_per_face)
    g.add_argument("--partials-per-face", type=int, default=_D.partials_per_face,
                   help="landmark-only samples (IoU between --landmark-iou and --pos-iou)")
    g.add_argument("--negatives-per-face", type=int, default=_D.negatives_per_face)
    g.add_argument("--negatives-per-image", type=int, default=_D.negatives_per_image,
                   help="non-face samples per image without faces")
    g.add_argument("--negatives-from-faces", action=argparse.BooleanOptionalAction, default=_D.negatives_from_faces,
                   help="take non-faces also from images whose faces are not all annotated (the study did)")
    g = parser.add_argument_group("candidates")
    g.add_argument("--ss-mode", default=_D.ss_mode, choices=("fast", "quality", "single", "none"),
                   help="Selective Search strategy ('none': jittered and random boxes only)")
    g.add_argument("--ss-max-side", type=int, default=_D.ss_max_side,
                   help="scale images to this longest side for Selective Search")
    g.add_argument("--ss-max-proposals", type=int, default=_D.ss_max_proposals)
    g.add_argument("--min-box", type=float, default=_D.min_box, help="smallest candidate side (source pixels)")
    g = parser.add_argument_group("split and layout")
    g.add_argument("--val-fraction", type=float, default=_D.val_fraction,
                   help="share of images (by hash of their group) in the validation split")
    g.add_argument("--seed", type=int, default=_D.seed, help="changes every random draw")
    g.add_argument("--images-per-shard", type=int, default=_D.images_per_shard)
    g = parser.add_argument_group("pixel budgets (an image or crop over them is reported and skipped)")
    g.add_argument("--max-image-pixels", type=pixel_count, default=argparse.SUPPRESS, metavar="N",
                   help="largest image decoded, width x height (default: $HYPERFACE_MAX_IMAGE_PIXELS or "
                        f"{MAX_IMAGE_PIXELS:,})")
    g.add_argument("--max-crop-pixels", type=pixel_count, default=argparse.SUPPRESS, metavar="N",
                   help="largest source region one crop reads, padding included (default: "
                        f"$HYPERFACE_MAX_CROP_PIXELS or {MAX_CROP_PIXELS:,})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_subcommands(parser)


def _add_subcommands(parser: argparse.ArgumentParser) -> None:
    """``prepare merge``, ``prepare preview`` and ``prepare turn``."""
    sub = parser.add_subparsers(dest="prepare_command", metavar="{merge,preview,turn}")
    m = sub.add_parser("merge", help="one dataset from the --shard parts of one job",
                       description="Write OUT/manifest.json listing the shards of the prepared folders.")
    m.add_argument("merge_out", type=Path, metavar="OUT")
    m.add_argument("parts", type=Path, nargs="+", metavar="DIR")
    p = sub.add_parser("preview", help="contact sheet of random samples with their labels",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("dir", type=Path, nargs="+", metavar="DIR", help="prepared folder(s) or manifest(s)")
    p.add_argument("--out", dest="sheet", type=Path, required=True, help="image file to write (.png, .jpg)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--split", default="val", choices=("train", "val", "all"))
    p.add_argument("--seed", dest="preview_seed", type=int, default=0)
    p.add_argument("--tile", type=int, default=160, help="tile side in pixels")
    p.add_argument("--columns", type=int, default=0, help="tiles per row (0: about square)")
    p.add_argument("--only", default=None, choices=KINDS,
                   help="draw only faces, only non-faces or only samples with landmarks")
    p.add_argument("--augment", default=None, metavar="KEY=V[,KEY=V...]",
                   help="draw the network input after these training augmentations (augment section keys, "
                        "all others off), e.g. mask=1 or sunglasses=0.5,blur=1; hidden points in red")
    t = sub.add_parser("turn", help="turned copies of 68-point faces, as a pts folder for --source",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Turn each training face of the sources (iBUG 68 points, one face an image) "
                                   "away from frontal on a generic 3D head and warp its picture with it "
                                   "(hyperface.data.turning); validation faces are never turned. Writes "
                                   "OUT/<n>/*.jpg + .pts; a stopped run resumes.")
    t.add_argument("turn_out", type=Path, metavar="OUT")
    t.add_argument("turn_sources", nargs="+", metavar="FORMAT:PATH", help="datasets with 68 points, e.g. pts:DIR")
    t.add_argument("--copies", type=int, default=TurnPlan.copies, help="turned copies of each face")
    t.add_argument("--yaw", type=_angle_range, default="{:g}:{:g}".format(*TurnPlan.yaw), metavar="LOW:HIGH",
                   help="degrees of yaw added, away from frontal")
    t.add_argument("--pitch", type=float, default=TurnPlan.pitch, help="degrees of pitch, up or down, at most")
    t.add_argument("--seed", dest="turn_seed", type=int, default=TurnPlan.seed, help="the turns' random seed")
    t.add_argument("--val-fraction", dest="turn_val_fraction", type=float, default=DEFAULT_VAL_FRACTION,
                   help="the validation share whose faces are never turned (prepare's --val-fraction)")


def run(args: argparse.Namespace) -> int:
    if args.prepare_command == "merge":
        return _merge(args)
    if args.prepare_command == "preview":
        return _preview(args)
    if args.prepare_command == "turn":
        return _turn(args)
    if not args.source or args.out is None:
        print("hyperface prepare: give --source FORMAT:PATH (one or more) and --out DIR", file=sys.stderr)
        return 2
    from hyperface.data.prepare import prepare

    try:
        opts = PrepareOptions(
            crop_size=args.crop_size, context=args.context, point_set=args.point_set,
            pos_iou=args.pos_iou, neg_iou=args.neg_iou, landmark_iou=args.landmark_iou, attr_iou=args.attr_iou,
            contain_fraction=args.contain_fraction, positives_per_face=args.positives_per_face,
            partials_per_face=args.partials_per_face, negatives_per_face=args.negatives_per_face,
            negatives_per_image=args.negatives_per_image, negatives_from_faces=args.negatives_from_faces,
            ss_mode=args.ss_mode, ss_max_side=args.ss_max_side, ss_max_proposals=args.ss_max_proposals,
            min_box=args.min_box, val_fraction=args.val_fraction, seed=args.seed,
            images_per_shard=args.images_per_shard, mode=args.mode, teacher=args.teacher,
            teacher_threshold=args.teacher_threshold, teacher_min_face=args.teacher_min_face,
            teacher_proposals=args.teacher_proposals, align_by=args.align_by)
        limits = pixel_limits(image=getattr(args, "max_image_pixels", None),
                              crop=getattr(args, "max_crop_pixels", None))
        with limits:
            manifest = prepare(args.source, args.out, opts, workers=args.workers, shard=args.shard,
                               progress=not args.no_progress, command=getattr(args, "argv", sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C: every finished shard is complete on disk (each is written atomically)
        print(f"hyperface prepare: interrupted ({_progress(args.out)}); run the same command again to resume",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        print(f"hyperface prepare: {exc}", file=sys.stderr)
        return 1
    _summary(manifest, args.out)
    return 0 if manifest["complete"] else 1


def _progress(out: Path) -> str:
    """How far an interrupted job in ``out`` got, from its manifest (written as the job stops)."""
    from hyperface.data.shards import load_manifest

    try:
        manifest, _ = load_manifest(out)
        i, n = manifest["plan"]["shard_spec"]
        done, planned = len(manifest["shards"]), len(range(i, manifest["plan"]["shards"], n))
    except (OSError, ValueError, KeyError, TypeError):
        return "no shard finished yet"
    return f"{done} of {planned} shards done and kept in {out}"


def _summary(manifest: dict, out: Path) -> None:
    c = manifest["counts"]
    print(f"{out}: {c.get('images', 0)} images, {c.get('faces', 0)} faces -> {c.get('samples', 0)} samples "
          f"in {len(manifest['shards'])} shards ({'complete' if manifest['complete'] else 'INCOMPLETE'}); "
          f"{len(manifest['skipped'])} items skipped (see manifest.json)")
    tasks = ("samples", "face", "non_face", "landmarks", "landmarks5", "visibility", "pose", "pose_class", "gender")
    print("| split | " + " | ".join(tasks) + " |")
    print("|---" * (len(tasks) + 1) + "|")
    for split in ("train", "val"):
        row = c.get(split, {})
        print(f"| {split} | " + " | ".join(str(row.get(t, 0)) for t in tasks) + " |")
    if "alignment" in c:  # --align-by pipeline
        a = c["alignment"]
        print(f"aligned by the pipeline's stage two: {a.get('found', 0)} faces as found, {a.get('box', 0)} by stage two "
              f"on their box (not found), {a.get('own', 0)} by their own points (stage two disagreed)")
    if manifest.get("options", {}).get("mode") == "hard-negatives":  # the loop's measure, per source
        for name, sc in c.get("by_source", {}).items():
            rates = [f"{sc.get(s, {}).get('samples', 0) / max(sc.get(s, {}).get('searched', 0), 1):.3f} {s}"
                     for s in ("train", "val")]
            print(f"{name}: {sc.get('samples', 0)} false positives on {sc.get('searched', 0)} images with every "
                  f"face annotated (per image: {', '.join(rates)})")


def _merge(args: argparse.Namespace) -> int:
    from hyperface.data.prepare import merge

    try:
        manifest = merge(args.merge_out, args.parts)
    except (ValueError, OSError) as exc:
        print(f"hyperface prepare merge: {exc}", file=sys.stderr)
        return 1
    _summary(manifest, args.merge_out)
    if not manifest["complete"]:
        missing = sorted(set(manifest["plan"]["shard_names"]) - {s["name"] for s in manifest["shards"]})
        print(f"missing {len(missing)} shard(s), e.g. {', '.join(missing[:5])}", file=sys.stderr)
        return 1
    return 0


def _angle_range(text: str) -> tuple[float, float]:
    """``--yaw LOW:HIGH``, checked as :class:`TurnPlan` checks it."""
    try:
        low, high = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW:HIGH degrees, e.g. 15:30") from None
    try:
        return TurnPlan(yaw=(low, high)).yaw
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _turn(args: argparse.Namespace) -> int:
    from hyperface.data.turning import turn_dataset

    try:
        plan = TurnPlan(copies=args.copies, yaw=args.yaw, pitch=args.pitch, seed=args.turn_seed)
    except ValueError as exc:
        print(f"hyperface prepare turn: {exc}", file=sys.stderr)
        return 2
    try:
        counts = turn_dataset(args.turn_sources, args.turn_out, plan, val_fraction=args.turn_val_fraction,
                              log=lambda text: print(text, file=sys.stderr))
    except (ValueError, OSError) as exc:
        print(f"hyperface prepare turn: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


def _augment_options(text: str) -> dict[str, float]:
    """``KEY=V,KEY=V`` of ``--augment`` as a mapping (values as numbers)."""
    options: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            options[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--augment {text!r}: expected KEY=NUMBER[,KEY=NUMBER...], e.g. mask=1,blur=0.5; "
                             f"got {item!r}") from None
        if not sep or not key.strip():
            raise ValueError(f"--augment {text!r}: expected KEY=NUMBER, got {item!r}")
    return options


def _preview(args: argparse.Namespace) -> int:
    from hyperface.data.preview import contact_sheet
    from hyperface.train.config import augment_config

    try:
        augment = None if args.augment is None else augment_config(_augment_options(args.augment), "--augment")
        info = contact_sheet(args.dir, args.sheet, n=args.n, split=None if args.split == "all" else args.split,
                             seed=args.preview_seed, tile=args.tile, columns=args.columns, augment=augment,
                             only=args.only)
    except (ValueError, OSError) as exc:
        print(f"hyperface prepare preview: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0
