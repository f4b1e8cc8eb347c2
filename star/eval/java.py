"""The evaluator's Java tools, from pycocoevalcap: the Stanford PTB tokenizer (one JVM call for all captions) and
METEOR 1.5 (one long-lived JVM fed through its pipe). `find_java` is what the workflow checks before any job.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm import tqdm

JAVA_INSTALL_HINT = ("install a Java runtime (Debian/Ubuntu: `sudo apt-get install default-jre-headless`; "
                     "conda: `conda install -c conda-forge openjdk`) and make sure `java` is on PATH")

class JavaError(RuntimeError):
    """Java is missing, or one of the Java tools (PTB tokenizer, METEOR) failed."""



_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def clean(text: str) -> str:
    """Non-ASCII characters -> spaces (official); control characters too, as they would split a line."""
    return _CONTROL.sub(" ", _NON_ASCII.sub(" ", text))


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise JavaError(f"`java` was not found: the PTB tokenizer and METEOR (pycocoevalcap) need it; "
                        f"{JAVA_INSTALL_HINT}")
    return java


def ptb_tokenize(texts: Sequence[str], java: str) -> list[str]:
    """Lower-cased PTB tokens without punctuation, as pycocoevalcap's PTBTokenizer gives them, for all `texts`
    in one JVM. `texts` must be clean and non-blank (one line each)."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    if not texts:
        return []
    jar = Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
    done = subprocess.run(cmd, input="\n".join(texts) + "\n", capture_output=True, text=True)
    lines = done.stdout.split("\n")[: len(texts)]
    if done.returncode != 0 or len(lines) != len(texts):
        raise JavaError(f"the PTB tokenizer failed (exit {done.returncode}, {len(lines)} lines for {len(texts)} "
                        f"captions): {done.stderr.strip()[-1000:]}")
    punctuation = set(ptbtokenizer.PUNCTUATIONS)
    return [" ".join(w for w in line.rstrip().split(" ") if w not in punctuation) for line in lines]


class MeteorJVM:
    """pycocoevalcap's METEOR 1.5 process, fed whole batches through its pipe (a writer thread keeps the JVM
    busy while we read). Segment statistics are computed once per distinct (prediction, reference)."""

    def __init__(self):
        from pycocoevalcap.meteor.meteor import Meteor

        self._meteor = Meteor()  # starts the JVM; it loads its paraphrase table while we do other work
        self._proc = self._meteor.meteor_p
        self._stats: dict[tuple[str, str], tuple[float, ...]] = {}

    def _send(self, lines: list[str]) -> None:
        try:
            self._proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the JVM died: the reader reports it with its stderr

    def _exchange(self, lines: list[str], progress: bool | None = False) -> list[str]:
        """Send all lines (each answered by one line) and read the answers."""
        writer = threading.Thread(target=self._send, args=(lines,), daemon=True)
        writer.start()
        answers = []
        quiet = True if not lines else None if progress is None else not progress  # None: only on a terminal
        for _ in tqdm(lines, desc="METEOR", unit="pair", disable=quiet):
            answer = self._proc.stdout.readline()
            if not answer:
                self._proc.kill()
                err = self._proc.stderr.read().decode(errors="replace").strip()[-1000:]
                raise JavaError(f"METEOR's JVM exited (it needs about 2 GB of memory): {err or 'no message'}")
            answers.append(answer.decode().strip())
        writer.join()
        return answers

    def cache_stats(self, pairs: Iterable[tuple[str, str]], progress: bool | None = False) -> None:
        """Segment statistics of every (prediction, reference) pair not seen yet."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._stats))
        # `SCORE ||| reference ||| hypothesis`, as pycocoevalcap writes it: '|||' and double spaces taken out of
        # the hypothesis; for a reference, removing '|||' and control characters only guards the line protocol
        lines = [f"SCORE ||| {_line_safe(ref.replace('|||', ''))} ||| {_line_safe(_meteor_text(hyp))}"
                 for hyp, ref in todo]
        for pair, stats in zip(todo, self._exchange(lines, progress), strict=True):
            self._stats[pair] = tuple(float(x) for x in stats.split())

    def scores(self, corpora: list[list[tuple[str, str]]]) -> list[float]:
        """METEOR of each corpus of cached pairs. The official sends `EVAL` with every segment's statistics and
        keeps the system-level line, which scores their aggregate; `SING` scores our aggregate directly, without
        the per-segment lines (the costly part)."""
        totals = [meteor_total([self._stats[p] for p in corpus]) for corpus in corpora]
        lines = ["SING ||| " + " ".join(repr(x) for x in total) for total in totals]
        return [float(answer) for answer in self._exchange(lines)]

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.kill()
            self._proc.wait()


def _meteor_text(text: str) -> str:
    return text.replace("|||", "").replace("  ", " ")


def _line_safe(text: str) -> str:
    """Control characters (a newline would end the line early) become spaces."""
    return _CONTROL.sub(" ", text)


def meteor_total(segments: list[tuple[float, ...]]) -> list[float]:
    """METEOR 1.5's system-level statistics of `segments`, as its EVAL aggregates them.

    A segment's statistics are: test and reference length and function words (4); per matcher stage (exact, stem,
    synonym, paraphrase) test and reference content matches, then test and reference function matches (16);
    chunks; test and reference word matches. All add up, except that a perfectly matched segment in one chunk
    adds no chunk (METEOR's rule). The values are counts, so the sums are exact in any order.
    """
    total = [0.0] * 23
    for s in segments:
        test_matches = sum(s[4:20:4]) + sum(s[6:20:4])
        ref_matches = sum(s[5:20:4]) + sum(s[7:20:4])
        single_perfect_chunk = test_matches == s[0] and ref_matches == s[1] and s[20] == 1
        for i, value in enumerate(s):
            if not (i == 20 and single_perfect_chunk):
                total[i] += value
    return total
