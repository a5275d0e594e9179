#!/usr/bin/env bash
# Synthesises the spoken-digit corpus of examples/speech.c and computes its
# features with the front end of the real test set:
#   bash examples/data/synthesize-speech.sh TIDIGITS_DIR OUT_DIR
# (examples/data/fetch.sh speech calls it with the fetched tidigits set).
#
# No recordings of many speakers are reachable, so the TRAINING audio is
# synthetic: Debian's espeak-ng speaking seeded random digit strings (1 to 7
# of zero, oh, one .. nine) with 6 of its English accents and 8 of its voice
# variants, 3 speeds and 3 pitches, then sox adds 0.05-0.5 s of silence
# before and 0.1-0.7 s after, changes the tempo and mixes in white, pink or
# brown noise. The test audio comes from voices the model
# never hears in training:
#   test-espeak    2 other espeak-ng accents (en-029, en-gb-x-gbcwmd) with
#                  other variants (m2, m6, f2, f4, klatt3)
#   test-awb, test-rms, test-slt, test-kal   flite's four English voices
#   tidigits       the 31 real TIDIGITS strings (2 speakers) that Debian's
#                  pocketsphinx-testdata ships as MFCC features, copied here
# Every split also has isolated words (1-digit strings); the training
# split's are the templates of speech.c's dynamic-time-warping baseline.
#
# Features: sphinx_fe (sphinxbase-utils) with the TIDIGITS model's own
# feat.params (13 cepstra, 20 filters 1-4000 Hz, 25 ms windows, 100 frames
# a second, DCT, DC removed, dither) at 16 kHz, without the newer sphinx_fe
# voice-activity and noise removal (the shipped features predate them);
# the dither is seeded. Output, written to OUT_DIR.partial and renamed:
#   OUT_DIR/manifest.tsv   path<TAB>transcript<TAB>voice<TAB>split, a header
#   OUT_DIR/mfc/*.mfc      Sphinx features: int32 count, then float32s
#   OUT_DIR/tidigits/*.mfc the real test strings as shipped (big-endian)
#   OUT_DIR/feat.params, OUT_DIR/fe-args.txt   the front end's parameters
# Deterministic (a Park-Miller generator with a fixed seed, fixed lists of
# voices, speeds, pitches and noises, sox -R, sphinx_fe -seed) and about
# 3300 utterances: about 2 minutes on 2 busy cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ "${1:-}" = --worker ]; then
  # One chunk of jobs: id|engine|voice|speed|pitch|tempo|noise|level|lead|trail|text
  # -> wav files in $3, then one sphinx_fe call for the chunk into $4.
  chunk=$2 wavdir=$3 mfcdir=$4 fe_args=$5
  ctl=$chunk.ctl
  : >"$ctl"
  while IFS='|' read -r id engine voice speed pitch tempo noise level lead trail text; do
    raw=$wavdir/$id.raw.wav
    if [ "$engine" = espeak ]; then
      espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$raw" "$text"
    else
      flite -voice "$voice" --setf duration_stretch="$speed" -t "$text" -o "$raw"
    fi
    rate=$(soxi -r "$raw")
    duration=$(soxi -D "$raw" | awk -v lead="$lead" -v trail="$trail" '{ print $1 + lead + trail }')
    # Silence before and after, as recordings have, then noise over it all.
    if [ "$noise" = none ]; then
      sox -q -V1 -R "$raw" -r 16000 -b 16 -c 1 "$wavdir/$id.wav" pad "$lead" "$trail" tempo "$tempo"
    else
      sox -q -V1 -R -m -v 1 -t sox "|sox -q -V1 $raw -p pad $lead $trail" -v "$level" -t sox \
        "|sox -q -V1 -R -n -r $rate -c 1 -p synth $duration ${noise}noise" \
        -r 16000 -b 16 -c 1 "$wavdir/$id.wav" tempo "$tempo"
    fi
    rm -f "$raw"
    echo "$id" >>"$ctl"
  done <"$chunk"
  # shellcheck disable=SC2086
  sphinx_fe $fe_args -c "$ctl" -di "$wavdir" -ei wav -do "$mfcdir" -eo mfc >"$chunk.log" 2>&1 ||
    { cat "$chunk.log" >&2; exit 1; }
  while read -r id; do rm -f "$wavdir/$id.wav"; done <"$ctl"
  exit 0
fi

[ $# -eq 2 ] || { echo "usage: bash $0 TIDIGITS_DIR OUT_DIR" >&2; exit 2; }
tidigits=$1 out=$2
bash "$top/.ci/install-deps.sh" espeak-ng flite sox sphinxbase-utils

# The fetched package, or its tidigits directory itself.
data=$tidigits/usr/share/pocketsphinx/test/data/tidigits
[ -d "$data" ] || data=$tidigits
for f in hmm/feat.params tidigits.lsn; do
  [ -e "$data/$f" ] || { echo "synthesize-speech: no $data/$f (bash examples/data/fetch.sh tidigits)" >&2; exit 1; }
done

partial=$out.partial
rm -rf "$partial"
mkdir -p "$partial/mfc" "$partial/tidigits" "$partial/work"
cp "$data/hmm/feat.params" "$partial/feat.params"
# feat.params also holds decoder settings (-feat, -agc, -cmn, -varnorm,
# -cmninit) that sphinx_fe does not take: keep its front-end lines.
fe_args=$(grep -E '^-(dither|lowerf|upperf|nfilt|transform|round_filters|remove_dc|wlen) ' \
  "$partial/feat.params" | tr '\n' ' ')
fe_args="$fe_args-samprate 16000 -remove_silence no -remove_noise no -seed 1 -mswav yes"
echo "$fe_args" >"$partial/fe-args.txt"

# The job list, from a fixed seed.
awk -v seed=20240024 -v manifest_path="$partial/manifest.tsv" '
  function next_random() { state = (state * 16807) % 2147483647; return state }
  function below(n) { return next_random() % n }
  function pick(list,   items, n) { n = split(list, items, " "); return items[below(n) + 1] }
  function digits(count,   k, text, word) {
    text = ""; words = ""
    for (k = 0; k < count; k++) {
      word = digit_words[below(11)]
      text = text (k ? " " : "") word
    }
    return text
  }
  function job(part, engine, voices, speeds, pitches, text, name,   voice, speed, pitch, tempo, noise, level, lead, trail) {
    voice = pick(voices); speed = pick(speeds); pitch = pick(pitches)
    tempo = pick("0.9 1.0 1.0 1.1")
    noise = pick("none white pink brown")
    level = pick("0.003 0.01 0.03")
    lead = pick("0.05 0.2 0.35 0.5")
    trail = pick("0.1 0.3 0.5 0.7")
    id = sprintf("%s-%05d", part, count[part]++)
    jobs = jobs sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n", id, engine, voice, speed, pitch, tempo, noise, level, lead, trail, text)
    manifest = manifest sprintf("mfc/%s.mfc\t%s\t%s\t%s\n", id, text, name == "" ? voice : name, part)
  }
  BEGIN {
    state = seed
    split("zero oh one two three four five six seven eight nine", digit_words, " ")
    for (k = 1; k <= 11; k++) digit_words[k - 1] = digit_words[k]
    accents = "en-gb en-us en-gb-scotland en-gb-x-gbclan en-gb-x-rp en-us-nyc"
    variants = "m1 m3 m5 m7 f1 f3 f5 klatt"
    split(accents, accent_list, " "); split(variants, variant_list, " ")
    train_voices = ""
    for (a = 1; a <= 6; a++) for (v = 1; v <= 8; v++)
      train_voices = train_voices " " accent_list[a] "+" variant_list[v]
    test_voices = "en-029+m2 en-029+f2 en-029+m6 en-029+klatt3 en-gb-x-gbcwmd+m2 en-gb-x-gbcwmd+f4 en-gb-x-gbcwmd+m6 en-gb-x-gbcwmd+klatt3"
    speeds = "140 165 190"
    pitches = "35 50 65"
    for (n = 0; n < 2000; n++) job("train", "espeak", train_voices, speeds, pitches, digits(1 + below(7)))
    # The templates: every training voice says every word once.
    n = split(train_voices, voice_list, " ")
    for (v = 1; v <= n; v++) for (w = 0; w < 11; w++)
      job("train", "espeak", voice_list[v], speeds, pitches, digit_words[w])
    for (n = 0; n < 200; n++) job("test-espeak", "espeak", test_voices, speeds, pitches, digits(1 + below(7)))
    for (w = 0; w < 44; w++) job("test-espeak", "espeak", test_voices, speeds, pitches, digit_words[w % 11])
    split("awb rms slt kal", flite_voices, " ")
    for (f = 1; f <= 4; f++) {
      for (n = 0; n < 100; n++) job("test-" flite_voices[f], "flite", flite_voices[f], "0.9 1.0 1.15", "0", digits(1 + below(7)))
      for (w = 0; w < 22; w++) job("test-" flite_voices[f], "flite", flite_voices[f], "0.9 1.0 1.15", "0", digit_words[w % 11])
    }
    printf "%s", jobs > "/dev/stdout"
    printf "path\ttranscript\tvoice\tsplit\n%s", manifest > manifest_path
  }' >"$partial/work/jobs"

# The real strings: transcript lines "one one one (man.ah.111a)".
while read -r line; do
  id=${line##*(}
  id=${id%)*}
  text=${line% (*}
  cp "$data/$id.mfc" "$partial/tidigits/$id.mfc"
  printf 'tidigits/%s.mfc\t%s\t%s\ttidigits\n' "$id" "$text" "${id%%.*}" >>"$partial/manifest.tsv"
done <"$data/tidigits.lsn"

total=$(wc -l <"$partial/work/jobs")
echo "synthesize-speech: $total utterances on 2 processes ..."
(cd "$partial/work" && split -n r/16 -d jobs chunk.)
ls "$partial/work"/chunk.?? |
  xargs -P2 -I{} bash "$0" --worker {} "$partial/work" "$partial/mfc" "$fe_args"
made=$(find "$partial/mfc" -name '*.mfc' | wc -l)
[ "$made" -eq "$total" ] || { echo "synthesize-speech: made $made of $total feature files" >&2; exit 1; }
rm -rf "$partial/work"
rm -rf "$out"
mv "$partial" "$out"
echo "synthesize-speech: $total synthetic and $(wc -l <"$data/tidigits.lsn") real utterances -> $out"
