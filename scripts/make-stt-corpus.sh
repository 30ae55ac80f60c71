#!/bin/sh
# make-stt-corpus.sh OUTDIR — builds a speech-to-text evaluation corpus for
# `candor eval-stt --corpus OUTDIR`: 16 kHz mono 16-bit WAV files plus
# refs.txt ("<file> <reference text>" per line).
#
# Sources, all local (nothing is downloaded):
#   - Debian's pocketsphinx-testdata LibriVox recordings (real speech), with
#     references from its `transcription` file ("<s> text </s> (id)" lines);
#   - a few sentences synthesised with espeak-ng and converted with ffmpeg.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
librivox=${LIBRIVOX_DIR:-/usr/share/pocketsphinx/test/data/librivox}

for tool in espeak-ng ffmpeg; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$0: $tool is required (apt-get install $tool)" >&2; exit 1; }
done
[ -f "$librivox/transcription" ] || { echo "$0: $librivox/transcription not found (apt-get install pocketsphinx-testdata)" >&2; exit 1; }

mkdir -p "$out"
refs=$out/refs.txt
: >"$refs"

# LibriVox: "<s> he was not an ill disposed young man </s> (sense_..._0880)"
n=0
while IFS= read -r line; do
	id=$(printf '%s\n' "$line" | sed -n 's/.*(\([^()]*\))[[:space:]]*$/\1/p')
	text=$(printf '%s\n' "$line" | sed -e 's/([^()]*)[[:space:]]*$//' -e 's/<\/\{0,1\}s>//g' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's/[[:space:]][[:space:]]*/ /g')
	[ -n "$id" ] && [ -n "$text" ] || continue
	src=$librivox/$id.wav
	[ -f "$src" ] || { echo "$0: missing $src" >&2; exit 1; }
	ffmpeg -nostdin -loglevel error -y -i "$src" -ar 16000 -ac 1 -c:a pcm_s16le "$out/$id.wav"
	printf '%s %s\n' "$id.wav" "$text" >>"$refs"
	n=$((n + 1))
	echo "librivox: $id.wav"
done <"$librivox/transcription"

# Synthetic speech: interview-style sentences.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
while IFS= read -r sentence; do
	i=$((i + 1))
	name=$(printf 'espeak-%02d.wav' "$i")
	espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$sentence"
	ffmpeg -nostdin -loglevel error -y -i "$tmp/raw.wav" -af "apad=pad_dur=0.5" -ar 16000 -ac 1 -c:a pcm_s16le "$out/$name"
	printf '%s %s\n' "$name" "$sentence" >>"$refs"
	echo "espeak-ng: $name"
done <<'SENTENCES'
tell me about a project you are proud of
i worked on the payment system for three years
we moved the database to a new server last spring
what would you do if a deadline was at risk
i like working with a small team
the hardest part was testing the code
SENTENCES

echo "corpus ready: $out ($n recordings, $i synthetic sentences, refs in $refs)"
