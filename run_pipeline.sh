#!/usr/bin/env bash
# Runs the classification job end to end: preprocess -> train -> score. With no arguments: on the sample
# corpus that ships in sample/, with sample/job.yaml, into runs/sample/ (replaced on each run).
# Sets up ./.venv on first use.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./run_pipeline.sh [--input PATTERN]... [--score-input PATTERN]... [--config JOB_YAML]
                         [--work-dir DIR] [--encoder auto|bilstm|albert|none] [--epochs N] [--overwrite]
                         [BEAM OPTIONS]

Runs the job's stages in order:
  1. preprocess  raw corpus -> tf.Transform -> TFRecords          (DIR/preprocessed)
  2. train       encoder fit, evaluation, raw-text model export   (DIR/model)
  3. score       Beam RunInference over the documents to score    (DIR/predictions)

  --input PATTERN    corpus files (CSV, TSV, JSON Lines, Parquet, TFRecord, text dirs), local or
                     gs://; repeatable. Default: the job file's corpus.inputs.
  --score-input PATTERN  documents to score; repeatable. Default: sample/holdout.jsonl (500
                     documents no training run sees) for the sample, else the training corpus.
  --config JOB_YAML  the job file with every stage's settings. Default without --input:
                     sample/job.yaml (the sample corpus, sized for a few minutes on 2 cores).
  --work-dir DIR     where the stages write. Default: runs/sample, replaced on every run; any
                     other DIR is never overwritten unless --overwrite is given.
  --encoder NAME     bilstm (the linear bidirectional encoder), albert (ALBERT, Lan et al. 2019),
                     none (the n-gram path alone) or auto (chosen from the data). Default: the
                     job file's; the sample's is bilstm.
  --epochs N         training epochs (the trainer stops early when eval accuracy stops improving).
  --overwrite        replace finished outputs in DIR.
  -h, --help         this text.

Every other option goes to both Beam stages (preprocess and score): Beam runner options such as
--runner DataflowRunner --project P --region R --temp_location gs://... --setup_file ./setup.py,
or --direct_num_workers 2. Field names, tokenizer, model sizes and the rest live in the job file
(see README.md, "Job files").
USAGE
}

inputs=()
score_inputs=()
config=""
work_dir=""
train_flags=()
beam_flags=()
overwrite=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --input) inputs+=(--input "$2"); shift 2 ;;
    --input=*) inputs+=(--input "${1#--input=}"); shift ;;
    --score-input) score_inputs+=(--input "$2"); shift 2 ;;
    --score-input=*) score_inputs+=(--input "${1#--score-input=}"); shift ;;
    --config) config="$2"; shift 2 ;;
    --config=*) config="${1#--config=}"; shift ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    --work-dir=*) work_dir="${1#--work-dir=}"; shift ;;
    --encoder|--epochs) train_flags+=("$1" "$2"); shift 2 ;;
    --encoder=*|--epochs=*) train_flags+=("$1"); shift ;;
    --overwrite) overwrite=(--overwrite); shift ;;
    *) beam_flags+=("$1"); shift ;;
  esac
done
if [ -z "$config" ] && [ ${#inputs[@]} -eq 0 ]; then
  config="sample/job.yaml"
  [ ${#score_inputs[@]} -eq 0 ] && score_inputs=(--input sample/holdout.jsonl)
fi
if [ -z "$work_dir" ]; then
  work_dir="runs/sample"
  overwrite=(--overwrite)
fi
config_flags=()
[ -n "$config" ] && config_flags=(--config "$config")
scored_corpus="held-out"
if [ ${#score_inputs[@]} -eq 0 ]; then
  score_inputs=(${inputs[@]+"${inputs[@]}"})
  scored_corpus="training"  # the documents scored are the ones the model was trained on
fi

source scripts/ensure_venv.sh
# The stages log INFO lines (progress) and warnings to stderr; here only warnings and errors are shown.
# TensorFlow's C++ side prints a few lines before its logging starts, which no setting silences:
# CUDA probing on machines without a GPU, and oneDNN's notice that boolean ops use Eigen without AVX-512.
# Those exact lines are dropped; every other warning or error line is kept.
harmless='cuda_platform\.cc:[0-9]+\] failed call to cuInit|util\.cc:[0-9]+\] oneDNN supports DT_BOOL only|^WARNING: All log messages before absl::InitializeLog'
quiet_logs() { grep -v -E "^(INFO|I0000)|^[0-9-]+ [0-9:,]+ INFO |$harmless" >&2 || true; }

started=$(date +%s)
echo "==> preprocess -> $work_dir/preprocessed"
"$PYTHON" -m pipelines.preprocess ${config_flags[@]+"${config_flags[@]}"} ${inputs[@]+"${inputs[@]}"} \
  --output-dir "$work_dir/preprocessed" ${overwrite[@]+"${overwrite[@]}"} ${beam_flags[@]+"${beam_flags[@]}"} \
  2> >(quiet_logs)

echo "==> train -> $work_dir/model"
"$PYTHON" -m model.trainer ${config_flags[@]+"${config_flags[@]}"} --data-dir "$work_dir/preprocessed" --model-dir "$work_dir/model" \
  ${overwrite[@]+"${overwrite[@]}"} ${train_flags[@]+"${train_flags[@]}"} 2> >(quiet_logs) | { grep -E '^Epoch|/step' || true; }

echo "==> score -> $work_dir/predictions"
"$PYTHON" -m pipelines.score ${config_flags[@]+"${config_flags[@]}"} --model "$work_dir/model" \
  ${score_inputs[@]+"${score_inputs[@]}"} --output-dir "$work_dir/predictions" \
  ${overwrite[@]+"${overwrite[@]}"} ${beam_flags[@]+"${beam_flags[@]}"} 2> >(quiet_logs)

"$PYTHON" scripts/summarize_run.py "$work_dir" "$(( $(date +%s) - started ))" "$scored_corpus"
