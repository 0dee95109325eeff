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


def score(pairs, stopped):
    """``{cer, last_word, capped, n}`` of ``(read, truth)`` pairs and whether each line stopped by the rule."""
    from benchmarks.ocr import character_error_rate

    return {
        "n": len(pairs),
        "cer": character_error_rate(pairs),
        "last_word": sum(last_word(read) == last_word(truth) for read, truth in pairs) / len(pairs),
        "capped": sum(not s for s in stopped) / len(stopped),
    }


def conditions(config, styles):
    """``[(name, prime offsets at the model's rate or None, prime text or None)]``: unprimed, then each style."""
    from graves_tf import pretrained, write

    chosen = [("unprimed", None, None)]
    for name in styles:
        offsets, text = pretrained.style(name)
        chosen.append((name, write.at_model_rate(offsets, config), text))
    return chosen


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
            progress(f"  bias {bias:g} {name:<12} CER {r['cer']:.3f}  last word {r['last_word']:.0%}  capped {r['capped']:.0%}")
    pool.shutdown()
    return results


def print_tables(results):
    for bias, rows in results.items():
        print(f"\nbias {bias:g} ({next(iter(rows.values()))['n']} novel sentences)")
        print(f"| condition | CER | last word read exactly | stopped by the step cap |")
        print("|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['cer']:.3f} | {r['last_word']:.0%} | {r['capped']:.0%} |")
        styled = [r["cer"] for name, r in rows.items() if name != "unprimed"]
        mean = sum(r["cer"] for r in rows.values()) / len(rows)
        print(f"mean CER over conditions: {mean:.3f}")
    print()
    for bias, rows in results.items():
        styled = [r["cer"] for name, r in rows.items() if name != "unprimed"]
        worst = max(styled) if styled else float("nan")
        print(f"novel_cer: {bias:g} {rows['unprimed']['cer']:.3f} {worst:.3f}")


def save(results, path, command):
    with open(path, "w") as f:
        json.dump({"command": command, "results": {str(b): rows for b, rows in results.items()}}, f, indent=1)
