"""Export one training checkpoint of a finished run as a model folder with its run record, so that
`bundle_model.py` can bundle it like the run's final export: a GAN's best weights are often not its last.

    python train_scripts/export_checkpoint.py --run runs/srgan-paper --step 400 \
        --why "..." --card super-resolution.md --output runs/srgan-paper-400
    python train_scripts/bundle_model.py --export runs/srgan-paper-400 --name srgan-x4 --card super-resolution.md ...

The architecture and the run record come from the run's final export (`<run>/final` and `final.run.json`);
steps and wall time become the checkpoint's (from `<run>/log.jsonl`). The weights come from
`<run>/checkpoints/checkpoint-<step>/model.safetensors` (Accelerate's first prepared model), or from
`--weights FILE` where that checkpoint was rotated away but its generator was saved.
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

import ganzoo
from ganzoo.hub import save_with_card
from ganzoo.training import MODEL_CARDS_DIR, format_seconds


def checkpoint_seconds(log: Path, step: int) -> float:
    """Training seconds at `step`, from the run's log.jsonl (the first row logged at or after it)."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    times = [row["time"] for row in rows if row.get("step", -1) >= step and "time" in row]
    if not times:
        raise SystemExit(f"{log} has no row at or after step {step}")
    return times[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the run's output folder")
    parser.add_argument("--step", type=int, required=True)
    parser.add_argument("--why", required=True, help="why this checkpoint (printed on the card)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--card", required=True, help="template file in ganzoo/model_cards/, as the run used")
    parser.add_argument("--export", default="final", help="the run's export whose config and record to use")
    parser.add_argument("--weights", type=Path, help="model.safetensors (or a model folder) holding that step's weights")
    args = parser.parse_args(argv)

    record = json.loads((args.run / f"{args.export}.run.json").read_text())
    if args.step > record["steps"]:
        raise SystemExit(f"step {args.step} is past the run's end ({record['steps']})")
    weights = args.weights or args.run / "checkpoints" / f"checkpoint-{args.step}" / "model.safetensors"
    if weights.is_dir():
        weights = weights / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"no weights at {weights} (checkpoints rotate: --checkpoints-total-limit)")
    model = ganzoo.load(str(args.run / args.export))
    model.load_state_dict(load_file(weights))
    record.update(model_name=args.output.name, steps=args.step,
                  wall_time=format_seconds(checkpoint_seconds(args.run / "log.jsonl", args.step)),
                  checkpoint_of=f"step {args.step} of `{args.run}`, which ran {record['steps']} steps: {args.why}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.output}.run.json").write_text(json.dumps(record, indent=2) + "\n")
    save_with_card(model.float().eval(), args.output, MODEL_CARDS_DIR / args.card, **record)
    print(f"wrote {args.output} and {args.output}.run.json")


if __name__ == "__main__":
    main()
