r"""Legibility of handwriting written from text the model never saw, read by OCR.

    python -m benchmarks.legibility                          # the shipped model, every shipped style
    python -m benchmarks.legibility --model_dir=runs/synthesis --checkpoint=...

``benchmarks/data/novel_sentences.txt`` holds 60 ordinary English sentences of
25-45 characters, some with capitals, digits and punctuation, written for
this benchmark (none is an IAM-OnDB line). Each is sampled at every bias of
``--biases``, unprimed and primed with every shipped style (section 5.5),
rendered with ``drawing.rasterize`` and read by Tesseract (``--psm 7``).
Printed per bias and condition:

* CER: edit distance between what OCR reads and the sentence, over the
  sentence's characters (spaces collapsed);
* last word: the share of lines whose last word OCR reads exactly (case
  kept; punctuation at either end of the word dropped on both sides);
* other words: the share of the words before the last that OCR reads exactly
  somewhere in the line (the same rule), to tell a line whose end is cut
  short (last word below the others) from one that is as legible at its end
  as elsewhere;
* capped: the share of lines that the step cap stopped (the end-of-sequence
  rule never fired).

The last lines read ``novel_cer: BIAS UNPRIMED WORST_STYLE`` for each bias, so
a release can be compared with the one before it on the same sentences.
"""

import concurrent.futures
import json
import os
import pathlib
import string

SENTENCES = pathlib.Path(__file__).parent / "data" / "novel_sentences.txt"
PUNCTUATION = string.punctuation


def novel_sentences(path=SENTENCES):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def last_word(text):
    words = text.split()
    return words[-1].strip(PUNCTUATION) if words else ""


def other_words_read(pairs):
    """The share of the words before each truth's last that appear, read exactly, among the read words."""
    found = total = 0
    for read, truth in pairs:
        seen = {word.strip(PUNCTUATION) for word in read.split()}
        others = [word.strip(PUNCTUATION) for word in truth.split()[:-1]]
        found += sum(word in seen for word in others)
        total += len(others)
    return found / total if total else float("nan")


def score(pairs, stopped):
    """``{cer, last_word, other_words, capped, n}`` of ``(read, truth)`` pairs and whether each line stopped by the rule."""
    from benchmarks.ocr import character_error_rate

    return {
        "n": len(pairs),
        "cer": character_error_rate(pairs),
        "last_word": sum(last_word(read) == last_word(truth) for read, truth in pairs) / len(pairs),
        "other_words": other_words_read(pairs),
        "capped": sum(not s for s in stopped) / len(stopped),
    }


def conditions(config, styles):
    """``[(name, prime offsets at the model's rate or None, prime text or None)]``: unprimed, then each style."""
    from graves_tf import write

    return [("unprimed", None, None)] + [(name, *write.style_prime(name, config)) for name in styles]


def run(model, config, reader, sentences, biases, styles, seed, batch_size, sample_options=None, progress=print):
    """Samples and reads every sentence at every bias and condition: ``{bias: {condition: score}}``."""
    from graves_tf import write

    sample_options = sample_options or {}
    results = {}
    pool = concurrent.futures.ThreadPoolExecutor(max(1, os.cpu_count() or 1))
    for bias in biases:
        results[bias] = {}
        for name, prime, prime_text in conditions(config, styles):
            offsets, stopped = [], []
            for start in range(0, len(sentences), batch_size):
                out, done = write.sample_lines(
                    model, config, sentences[start : start + batch_size], bias, seed + start, prime, prime_text,
                    **sample_options,
                )
                offsets += out
                stopped += done
            names = [f"b{bias:g}_{name}_{i}" for i in range(len(offsets))]
            reads = list(pool.map(reader.read, offsets, names))
            results[bias][name] = score(list(zip(reads, sentences)), stopped)
            r = results[bias][name]
            progress(f"  bias {bias:g} {name:<12} CER {r['cer']:.3f}  last word {r['last_word']:.0%}  "
                     f"other words {r['other_words']:.0%}  capped {r['capped']:.0%}")
    pool.shutdown()
    return results


def print_tables(results):
    for bias, rows in results.items():
        print(f"\nbias {bias:g} ({next(iter(rows.values()))['n']} novel sentences)")
        print("| condition | CER | last word read exactly | other words read exactly | stopped by the step cap |")
        print("|---|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['cer']:.3f} | {r['last_word']:.0%} | {r['other_words']:.0%} | {r['capped']:.0%} |")
        styled = [r["cer"] for name, r in rows.items() if name != "unprimed"]
        mean = sum(r["cer"] for r in rows.values()) / len(rows)
        print(f"mean CER over conditions: {mean:.3f}")
    print()
    for bias, rows in results.items():
        styled = [r["cer"] for name, r in rows.items() if name != "unprimed"]
        worst = max(styled) if styled else float("nan")
        print(f"novel_cer: {bias:g} {rows['unprimed']['cer']:.3f} {worst:.3f}")


def save(results, path, command, extra=None):
    with open(path, "w") as f:
        json.dump({"command": command, "results": {str(b): rows for b, rows in results.items()}, **(extra or {})}, f, indent=1)


def hello_world(model, config, reader, biases, seeds=range(10), style="none", text="Hello world"):
    """What OCR reads of ``write``'s own README line at each bias, seeds 0-9: ``{bias: [(seed, read, cer)]}``."""
    from benchmarks.ocr import character_error_rate
    from graves_tf import write

    prime, prime_text = write.style_prime(style, config)
    results = {}
    for bias in biases:
        rows = []
        for seed in seeds:
            (offsets,) = write.write_lines(model, config, [text], bias, seed, prime, prime_text)
            read = reader.read(offsets, f"hello_b{bias:g}_{style or 'unprimed'}_{seed}")
            rows.append((seed, read, character_error_rate([(read, text)])))
        results[bias] = rows
    return results


def read_within_one_character(rows):
    """How many of ``hello_world``'s ``(seed, read, cer)`` rows OCR read at CER <= 0.1."""
    return sum(cer <= 0.1 for _, _, cer in rows)


def lines_of_width(sentences, width, count):
    """``count`` lines made by wrapping the sentences, run together, at ``width`` characters (the full lines only)."""
    import textwrap

    lines = [line for line in textwrap.wrap(" ".join(sentences), width) if len(line) > width - 8]
    return lines[:count]


def by_width(model, config, reader, sentences, widths, bias, seed=0, count=20, batch_size=20, style="none"):
    """Legibility of lines wrapped at each width, as ``write --width`` wraps a page: ``{width: score}``."""
    from graves_tf import write

    prime, prime_text = write.style_prime(style, config)
    results = {}
    for width in widths:
        lines = lines_of_width(sentences, width, count)
        offsets, stopped = [], []
        for start in range(0, len(lines), batch_size):
            out, done = write.sample_lines(model, config, lines[start : start + batch_size], bias, seed + start, prime, prime_text)
            offsets += out
            stopped += done
        reads = [reader.read(o, f"width{width}_{style or 'unprimed'}_{i}") for i, o in enumerate(offsets)]
        results[width] = score(list(zip(reads, lines)), stopped)
    return results
