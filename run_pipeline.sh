#!/usr/bin/env bash
# Runs the classification job end to end. With no arguments: on the sample corpus that ships in
# sample/, into runs/sample/ (replaced on each run). Sets up ./.venv on first use.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./run_pipeline.sh [--input PATTERN]... [--work-dir DIR] [--config JOB_YAML] [STAGE OR BEAM OPTIONS]

Runs the job's stages in order: preprocess (raw corpus -> tf.Transform -> TFRecords).

  --input PATTERN    corpus files (CSV, TSV, JSON Lines, Parquet, TFRecord, text dirs), local or
                     gs://; repeatable. Default: sample/corpus.jsonl
  --work-dir DIR     where each stage writes (DIR/preprocessed). Default: runs/sample, replaced
                     on every run; any other DIR is never overwritten unless --overwrite is given.
  --config JOB_YAML  job file with the settings of every stage (flags override it).
  -h, --help         this text.

Every other option goes to each stage: preprocessing flags (--text-field, --tokenizer,
--max-seq-length, ...; see `python -m pipelines.preprocess --help`) and Beam runner options
(--runner DataflowRunner --project P --region R --temp_location gs://..., --direct_num_workers 2, ...).
USAGE
}

inputs=()
work_dir=""
passthrough=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --input) inputs+=(--input "$2"); shift 2 ;;
    --input=*) inputs+=(--input "${1#--input=}"); shift ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    --work-dir=*) work_dir="${1#--work-dir=}"; shift ;;
    *) passthrough+=("$1"); shift ;;
  esac
done

if [ ${#inputs[@]} -eq 0 ] && [ -z "$work_dir" ]; then
  inputs=(--input sample/corpus.jsonl)
fi
if [ -z "$work_dir" ]; then
  work_dir="runs/sample"
  passthrough+=(--overwrite)
fi

source scripts/ensure_venv.sh

preprocessed="$work_dir/preprocessed"
started=$(date +%s)
echo "==> preprocess -> $preprocessed"
"$PYTHON" -m pipelines.preprocess ${inputs[@]+"${inputs[@]}"} --output-dir "$preprocessed" \
  ${passthrough[@]+"${passthrough[@]}"} 2> >(grep -v -E '^(WARNING|INFO|I0000|W0000|E0000)|^[0-9-]+ [0-9:,]+ INFO' >&2)

"$PYTHON" - "$preprocessed" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
from apache_beam.io.filesystems import FileSystems
directory, seconds = sys.argv[1], sys.argv[2]
with FileSystems.open(FileSystems.join(directory, "stats.json")) as f:
    stats = json.load(f)
print(f"\nDone in {seconds}s.")
print(f"  documents read {stats['read']}: accepted {stats['accepted']} "
      f"(train {stats['train']}, eval {stats['eval']}), rejected {stats['rejected']}"
      + (f" {stats['rejected_by_reason']}" if stats['rejected'] else ""))
print(f"  labels {stats['num_labels']}: " + ", ".join(f"{k} {v}" for k, v in stats['labels'].items()))
print(f"  {stats['tokenizer']} vocabulary of {stats['vocab_size']} ids; "
      f"tokens per document: mean {stats['token_length']['mean']}, p95 {stats['token_length']['p95']}, "
      f"max_seq_length {stats['max_seq_length']}")
print(f"  outputs: {directory}/ (train/, eval/, rejected/, transform_fn/, stats.json)")
PY
