#!/usr/bin/env bash
# The README's first command, for a fresh Debian 12 machine: installs what
# the demo needs (compiler, CMake, OpenBLAS, gnuplot) when missing, builds
# liblstm in Release mode, trains examples/forecast.c on the yearly sunspots
# and on the weekly Mauna Loa CO2, prints each test-period RMSE against the
# last-value and last-season baselines, and charts the runs. Everything it
# writes goes to build/demo/ (results/ there: CSVs, logs, PNGs and the
# saved networks).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash .ci/install-deps.sh build-essential cmake pkg-config libopenblas-dev gnuplot-nox
echo "=== build: liblstm and examples/forecast.c (Release)"
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DLSTM_BUILD_TESTS=OFF \
  -DLSTM_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo -j "$(nproc)" --target forecast >/dev/null
results=build/demo/results
mkdir -p "$results"
for series in sunspots co2; do
  echo "=== train and test: forecast --series $series"
  build/demo/examples/forecast --series "$series" \
    --csv "$results/forecast-$series-curve.csv" \
    --predictions "$results/forecast-$series-predictions.csv" \
    --model "$results/forecast-$series.lstm" |
    tee "$results/forecast-$series.log"
done
echo "=== charts"
bash examples/plot.sh "$results"
echo "=== result (test-period RMSE, one step ahead)"
for series in sunspots co2; do
  grep -A 4 "^test RMSE" "$results/forecast-$series.log"
done
