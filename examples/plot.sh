#!/usr/bin/env bash
# Turns the examples' CSV files in DIR into PNG charts beside them, with
# gnuplot (Debian's gnuplot-nox, installed when missing). Usage:
#   bash examples/plot.sh DIR
# It charts whichever of these files DIR holds (the --csv and --predictions
# outputs of the examples):
#   adding-T*-curve.csv, adding-T*-predictions.csv         -> adding.png
#   charlm-curve.csv                                         -> charlm.png
#   forecast-SERIES-curve.csv, forecast-SERIES-predictions.csv
#                                                            -> forecast-SERIES.png
#   digits-curve.csv, digits-predictions.csv               -> digits.png
#   sentiment*-curve.csv                                     -> sentiment*.png
#   nextword-curve.csv, nextword-predictions.csv             -> nextword.png
#   speech-curve.csv                                         -> speech.png
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: bash examples/plot.sh DIR}
cd "$dir"
command -v gnuplot >/dev/null 2>&1 || bash "$top/.ci/install-deps.sh" gnuplot-nox

common='set datafile separator comma
set datafile columnheaders
set terminal pngcairo size 1200,450 font "sans,10"
set grid
set key top right'

# The adding problem: test MSE against training sequences for every T, and
# the answers of the first T with predictions on its test set.
curves=(adding-T*-curve.csv)
if [ -e "${curves[0]}" ]; then
  plots=""
  for f in "${curves[@]}"; do
    t=${f#adding-T}
    t=${t%-curve.csv}
    plots+="'$f' using 1:3 with linespoints pointtype 7 pointsize 0.5 title 'T = $t', "
  done
  predictions=(adding-T*-predictions.csv)
  layout="1,1"
  scatter=""
  if [ -e "${predictions[0]}" ]; then
    layout="1,2"
    t=${predictions[0]#adding-T}
    scatter="
set title 'answers on the 1000 test sequences, T = ${t%-predictions.csv}'
set xlabel 'target (sum of the two marked values)'
set ylabel 'LSTM answer'
set size ratio -1
set key top left
plot [0:2][0:2] '${predictions[0]}' using 1:2 with points pointtype 7 pointsize 0.3 title 'test sequence', \\
     x with lines linecolor 'black' title 'answer = target'"
  fi
  gnuplot <<EOF
$common
set output 'adding.png'
set multiplot layout $layout title 'Adding problem: one LSTM layer + dense, Adam 1e-3, chrono init, clip 1'
set title 'test MSE (1000 sequences) while training'
set xlabel 'training sequences'
set ylabel 'test MSE'
set logscale y
set format x '%.0s%c'
plot $plots \
     1.0/6 with lines dashtype 2 linecolor 'black' title 'baseline: always 1.0 (1/6)', \
     0.01 with lines dashtype 3 linecolor 'gray40' title 'solved (0.01)'
unset logscale y
set format x '%g'
$scatter
unset multiplot
EOF
  echo "plot: $dir/adding.png"
fi

# The character-level language model: bits per character while training.
if [ -e charlm-curve.csv ]; then
  gnuplot <<EOF
$common
set output 'charlm.png'
set title 'Character-level LM: bits per character while training'
set xlabel 'training step'
set ylabel 'bits per character'
set key bottom left
plot 'charlm-curve.csv' using 1:2 with linespoints pointtype 7 pointsize 0.5 title 'training batches', \
     '' using 1:3 with linespoints pointtype 7 pointsize 0.5 title 'held-out text', \
     '' using 1:4 with lines dashtype 2 linecolor 'black' title 'unigram baseline'
EOF
  echo "plot: $dir/charlm.png"
fi

# Forecasts: the test period (actual, LSTM, last value) and the test RMSE
# per epoch against the two baselines' RMSE.
for predictions in forecast-*-predictions.csv; do
  [ -e "$predictions" ] || continue
  series=${predictions#forecast-}
  series=${series%-predictions.csv}
  curve=forecast-$series-curve.csv
  [ -e "$curve" ] || { echo "plot: $predictions without $curve" >&2; exit 1; }
  # Times are years (sunspots) or YYYYMMDD dates (CO2): those become a
  # time axis with a tick a year.
  first_time=$(sed -n 2p "$predictions" | cut -d, -f1)
  time_axis=""
  [ ${#first_time} -eq 8 ] &&
    time_axis="set xdata time; set timefmt '%Y%m%d'; set format x '%Y'; set xtics 365.25*86400"
  gnuplot <<EOF
$common
set output 'forecast-$series.png'
stats '$predictions' using ((\$4 - \$2)**2) name 'last_value' nooutput
stats '$predictions' using ((\$5 - \$2)**2) name 'last_season' nooutput
set multiplot layout 1,2 title 'Forecasting $series one step ahead: held-out test period'
set title 'test period'
$time_axis
set xlabel 'time'
set ylabel '$series'
set key top left
plot '$predictions' using 1:2 with linespoints pointtype 7 pointsize 0.4 linecolor 'black' title 'actual', \
     '' using 1:3 with lines linewidth 2 title 'LSTM', \
     '' using 1:4 with lines dashtype 2 title 'last value'
set xdata
set format x '%g'
set xtics autofreq
set title 'test RMSE while training'
set xlabel 'epoch'
set ylabel 'RMSE'
set logscale y
set key top right
plot '$curve' using 1:3 with linespoints pointtype 7 pointsize 0.4 title 'LSTM', \
     sqrt(last_value_mean) with lines dashtype 2 title sprintf('last value (%.3f)', sqrt(last_value_mean)), \
     sqrt(last_season_mean) with lines dashtype 3 title sprintf('last season (%.3f)', sqrt(last_season_mean))
unset multiplot
EOF
  echo "plot: $dir/forecast-$series.png"
done

# Handwritten digits: test and validation accuracy per epoch against the
# two baselines, and the confusion matrix of the held-out digits.
if [ -e digits-curve.csv ]; then
  layout="1,1"
  confusion=""
  if [ -e digits-predictions.csv ]; then
    layout="1,2"
    # The 100 cells "true predicted count" of the predictions (file,index,true,predicted,...).
    awk -F, 'NR > 1 { n[$3 "," $4]++ }
             END { print "true,predicted,count"
                   for (t = 0; t < 10; t++) for (p = 0; p < 10; p++) print t "," p "," n[t "," p] + 0 }' \
      digits-predictions.csv > digits-confusion.tmp
    confusion="
set title 'confusion matrix of the held-out digits (count; colour: log scale)'
set xlabel 'predicted class'
set ylabel 'true class'
set xrange [-0.5:9.5]
set yrange [9.5:-0.5]
set xtics 1
set ytics 1
set size ratio -1
set logscale cb
set palette defined (0 '#ffffcc', 0.5 '#fd8d3c', 1 '#bd0026')
set cbrange [1:*]
unset key
plot 'digits-confusion.tmp' using 2:1:(\$3 > 0 ? \$3 : 1/0) with image, \\
     '' using 2:1:(\$3 > 0 ? sprintf('%d', \$3) : '') with labels font 'sans,8'"
  fi
  # The validation column is empty unless the run kept validation digits (--validation).
  validation=""
  awk -F, 'NR > 1 && $3 != "" { found = 1 } END { exit !found }' digits-curve.csv &&
    validation="'' using 1:3 with linespoints pointtype 6 pointsize 0.5 title 'LSTM, validation digits',"
  gnuplot <<EOF
$common
set output 'digits.png'
set multiplot layout $layout title 'MNIST digits read a row at a time: LSTM (28 steps of 28 pixels) against two baselines'
set title 'held-out accuracy while training'
set xlabel 'epoch'
set ylabel 'accuracy'
set yrange [0.75:1]
set key bottom right
plot 'digits-curve.csv' using 1:4 with linespoints pointtype 7 pointsize 0.5 title 'LSTM, test digits', \
     $validation \
     '' using 1:6 with lines dashtype 2 linecolor 'black' title 'logistic regression (test)', \
     '' using 1:5 with lines dashtype 3 linecolor 'gray40' title 'nearest class mean (test)'
unset yrange
$confusion
unset multiplot
EOF
  rm -f digits-confusion.tmp
  echo "plot: $dir/digits.png"
fi

# Sentiment: held-out accuracy per epoch against naive Bayes and the
# majority class (flat lines: they do not train), and the training loss.
for curve in sentiment*-curve.csv; do
  [ -e "$curve" ] || continue
  name=${curve%-curve.csv}
  gnuplot <<EOF
$common
set output '$name.png'
set multiplot layout 1,2 title 'Sentiment ($name): LSTM against naive Bayes and the majority class'
set title 'accuracy per epoch'
set xlabel 'epoch'
set xtics 1
set ylabel 'accuracy'
set yrange [0.45:*]
set key bottom right
plot '$curve' using 1:3 with linespoints pointtype 7 pointsize 0.5 title 'LSTM, validation', \
     '' using 1:4 with linespoints pointtype 7 pointsize 0.5 title 'LSTM, test', \
     '' using 1:5 with lines dashtype 2 linewidth 2 title 'naive Bayes, test', \
     '' using 1:6 with lines dashtype 4 title 'naive Bayes given the extra data too (--extra-imdb), test', \
     '' using 1:7 with lines dashtype 3 linecolor 'black' title 'majority class, test'
set title 'training loss (binary cross-entropy)'
set ylabel 'loss'
set autoscale y
set key top right
plot '$curve' using 1:2 with linespoints pointtype 7 pointsize 0.5 title 'training batches'
unset multiplot
EOF
  echo "plot: $dir/$name.png"
done

# Next-word prediction: perplexity while training against the unigram and
# Kneser-Ney trigram baselines, and (with the predictions) the probability
# each model gave every 10th test word.
if [ -e nextword-curve.csv ]; then
  layout="1,1"
  scatter=""
  if [ -e nextword-predictions.csv ]; then
    layout="1,2"
    scatter="
set title 'probability of each test word (every 10th word)'
set xlabel 'Kneser-Ney trigram'
set ylabel 'LSTM'
set logscale xy
set format x '10^{%L}'
set format y '10^{%L}'
set key top left
plot 'nextword-predictions.csv' every 10 using 4:3 with points pointtype 7 pointsize 0.15 linecolor rgb '#a0206090' title 'a test word', \\
     x with lines dashtype 2 linecolor 'black' title 'equal'"
  fi
  gnuplot <<EOF
$common
set output 'nextword.png'
set multiplot layout $layout title 'Next-word prediction on the Brown Corpus'
set title 'perplexity while training'
set xlabel 'epoch'
set ylabel 'perplexity'
set logscale y
plot 'nextword-curve.csv' using 1:2 with linespoints pointtype 7 pointsize 0.5 title 'LSTM, training text', \
     '' using 1:3 with linespoints pointtype 7 pointsize 0.5 title 'LSTM, validation text', \
     '' using 1:5 with lines dashtype 2 linecolor 'black' title 'KN trigram, validation', \
     '' using 1:4 with lines dashtype 3 linecolor 'gray' title 'unigram, validation'
unset logscale y
$scatter
unset multiplot
EOF
  echo "plot: $dir/nextword.png"
fi

# Spoken digits: the training CTC loss, and the held-out espeak-ng voices'
# word error rate against the connected-word DTW baseline's, per epoch.
if [ -e speech-curve.csv ]; then
  gnuplot <<EOF
$common
set output 'speech.png'
set multiplot layout 1,2 title 'Spoken digits: bidirectional LSTM 2 layers + CTC, trained on synthetic espeak-ng voices'
set title 'training CTC loss (per label)'
set xlabel 'epoch'
set ylabel 'CTC loss'
set logscale y
plot 'speech-curve.csv' using 1:2 with linespoints pointtype 7 pointsize 0.5 title 'LSTM-CTC'
unset logscale y
set title 'word error rate on held-out espeak-ng voices'
set ylabel 'WER (%)'
set yrange [0:*]
plot 'speech-curve.csv' using 1:3 with linespoints pointtype 7 pointsize 0.5 title 'LSTM-CTC (greedy)', \
     '' using 1:4 with lines dashtype 2 linecolor 'black' title 'connected-word DTW'
unset multiplot
EOF
  echo "plot: $dir/speech.png"
fi
