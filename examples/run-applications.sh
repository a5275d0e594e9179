#!/usr/bin/env bash
# Reproduces the README's table of applications: installs what is missing,
# fetches the data sets (examples/data/fetch.sh), builds the examples in
# Release mode, trains each application on its real data with the settings
# of the table's runs, and charts them. Each run prints its progress, its
# held-out result beside the same run's baselines, saves one model file and
# answers from it. Everything goes to build/applications/ (results/: logs,
# CSV files, charts and the model files). About 40 minutes on 2 cores.
#   bash examples/run-applications.sh [sentiment|nextword|speech|digits]...
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
apps=("$@")
[ ${#apps[@]} -gt 0 ] || apps=(digits sentiment nextword speech)
bash .ci/install-deps.sh build-essential cmake pkg-config libopenblas-dev gnuplot-nox
for app in "${apps[@]}"; do
  case $app in
    sentiment) bash examples/data/fetch.sh sentiment imdb ;;
    nextword) bash examples/data/fetch.sh brown ;;
    speech) bash examples/data/fetch.sh speech ;;
    digits) bash examples/data/fetch.sh mnist ;;
    *) echo "unknown application '$app' (sentiment, nextword, speech, digits)" >&2; exit 2 ;;
  esac
done
echo "=== build: liblstm and the applications (Release)"
cmake -S . -B build/applications -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_TESTS=OFF \
  -DLSTM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/applications -j "$(nproc)" --target "${apps[@]}" >/dev/null
e=build/applications/examples r=build/applications/results
mkdir -p "$r"
for app in "${apps[@]}"; do
  echo "=== train and test: $app"
  case $app in
    sentiment)
      $e/sentiment --extra-imdb 5000 --min-count 2 --epochs 15 --patience 5 --seed 1 \
        --csv $r/sentiment-curve.csv --predictions $r/sentiment-predictions.csv \
        --model $r/sentiment.lstm | tee $r/sentiment.log
      $e/sentiment --data imdb --train-limit 30000 --epochs 3 --max-length 150 \
        --embedding-dim 64 --hidden 64 --csv $r/sentiment-imdb-curve.csv \
        --model $r/sentiment-imdb.lstm | tee $r/sentiment-imdb.log
      echo "I really enjoyed the movie" | $e/sentiment --answer --model $r/sentiment.lstm
      ;;
    nextword)
      $e/nextword --steps 900 --evals 3 --seed 20031 --csv $r/nextword-curve.csv \
        --predictions $r/nextword-predictions.csv --model $r/nextword.lstm | tee $r/nextword.log
      $e/nextword --model $r/nextword.lstm --prompt "the jury said" --words 20
      ;;
    speech)
      $e/speech --epochs 20 --csv $r/speech-curve.csv --predictions $r/speech-predictions.csv \
        --model $r/speech.lstm | tee $r/speech.log
      data=${LSTM_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/liblstm/data}
      $e/speech --model $r/speech.lstm --transcribe "$data/speech/tidigits/man.ah.2934za.mfc"
      ;;
    digits)
      $e/digits --csv $r/digits-curve.csv --predictions $r/digits-predictions.csv \
        --model $r/digits.lstm | tee $r/digits.log
      $e/digits --answer $r/digits.lstm examples/data/digit-samples.txt
      ;;
  esac
done
echo "=== charts"
bash examples/plot.sh "$r"
