"""rewards.accuracy, rewards.format and rewards.pool: the equivalence table, deadlines on adversarial inputs, no
orphan processes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from profit_rl.rewards import accuracy_reward, format_reward
from profit_rl.rewards.pool import VerifierPool
from profit_rl.rewards.verify import score_answer

from conftest import REPO  # noqa: E402  (the repository root, defined once)


@pytest.fixture(scope="module")
def pool():
    with VerifierPool(num_workers=2, timeout=1.0) as p:
        yield p


# (gold, completion, expected reward)
EQUIVALENCE_TABLE = [
    ("\\frac{1}{2}", "so $\\boxed{0.5}$", 1.0),  # fraction vs decimal
    ("0.5", "\\boxed{\\dfrac{1}{2}}", 1.0),
    ("\\frac{1}{2}", "\\boxed{0.6}", 0.0),
    ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}", 1.0),  # surds
    ("\\sqrt{12}", "\\boxed{3\\sqrt{2}}", 0.0),
    ("[1, 2)", "\\boxed{[1,2)}", 1.0),  # intervals: same, and open/closed ends differ
    ("(1, 2]", "\\boxed{[1, 2)}", 0.0),
    ("(-\\infty, 3]", "\\boxed{(-\\infty,3]}", 1.0),
    ("\\{1, 2, 3\\}", "\\boxed{\\{3, 2, 1\\}}", 1.0),  # sets ignore order
    ("\\{1, 2\\}", "\\boxed{\\{1, 3\\}}", 0.0),
    ("5", "\\boxed{x = 5}", 1.0),  # x=5 vs 5
    ("x=5", "\\boxed{5}", 1.0),
    ("30^\\circ", "\\boxed{30}", 1.0),  # degrees
    ("30", "\\boxed{30^{\\circ}}", 1.0),
    ("5\\text{ cm}", "\\boxed{5}", 1.0),  # text units
    ("864 \\mbox{ inches}^2", "\\boxed{864 \\text{ inches}^2}", 1.0),
    ("\\$18.90", "\\boxed{18.9}", 1.0),
    ("025", "\\boxed{25}", 1.0),  # AIME zero padding
    ("Janet sells <<16-3-4=9>>9 eggs.\n#### 18", "\\boxed{18}", 1.0),  # GSM8K gold
    ("\\text{Evelyn}", "\\boxed{\\text{Evelyn}}", 1.0),
    ("\\text{(C)}", "\\boxed{C}", 1.0),
    ("10,\\!080", "\\boxed{10080}", 1.0),
    ("7", "\\boxed{8}", 0.0),  # wrong
    ("7", "first \\boxed{7}, no wait, \\boxed{8}", 0.0),  # last box counts
    ("7", "the answer is 7", 0.0),  # the prompt asks for \\boxed{}: an unboxed answer earns nothing
    ("7", "I computed 3 + 4 = 7", 0.0),  # nor does a stray number
    ("7", "so\n#### 7", 1.0),  # a GSM8K-style final line is read
    ("7", "", 0.0),  # no answer at all
    ("7", "\\boxed{7", 0.0),  # box never closed
]


def test_equivalence_table(pool):
    golds = [g for g, _, _ in EQUIVALENCE_TABLE]
    completions = [c for _, c, _ in EQUIVALENCE_TABLE]
    scores = accuracy_reward(completions, answer=golds, pool=pool)
    scores_again, stats = pool.score(golds, completions, fallback="none")
    wrong = [(g, c, s, e) for (g, c, e), s in zip(EQUIVALENCE_TABLE, scores) if s != e]
    assert wrong == []
    assert stats.timeouts == 0 and stats.errors == 0
    assert stats.correct == sum(e for *_, e in EQUIVALENCE_TABLE)
    # the in-process function gives the same answers: the pool only adds the deadline
    assert scores_again == scores == [score_answer(g, c, fallback="none")[1] for g, c in zip(golds, completions)]
    # evals may read "the answer is X" (fallback="answer_is"): same table, one more item right
    lenient, _ = pool.score(golds, completions, fallback="answer_is")
    assert [i for i, (a, b) in enumerate(zip(scores, lenient)) if a != b] == [golds.index("7") + 2]


def test_one_default_fallback_everywhere(pool):
    """A caller that names no fallback gets rewards.answers.DEFAULT_FALLBACK, in process and in the pool alike."""
    from profit_rl.rewards.answers import DEFAULT_FALLBACK, extract_answer

    text = "we count 12, then 13"  # only "last_number" reads an answer here (13)
    expected = score_answer("13", text, fallback=DEFAULT_FALLBACK)[1]
    assert extract_answer(text) == extract_answer(text, fallback=DEFAULT_FALLBACK)
    assert pool.score(["13"], [text])[0] == [score_answer("13", text)[1]] == [expected]
    assert {score_answer("13", text, fallback=f)[1] for f in ("none", "answer_is", "last_number")} == {0.0, 1.0}


def test_gold_unparseable_scores_none(pool):
    scores, stats = pool.score(["", "\\boxed{}"], ["\\boxed{1}", "\\boxed{1}"])
    assert scores == [None, None] and stats.gold_unparseable == 2


def test_every_warm_up_item_reaches_the_parser_and_scores():
    """The fork server's warm-up only fills the parser's caches for entries that parse: an entry that math-verify
    cannot read (a typo in the LaTeX) warms nothing. Every answer parses to a sympy object (math-verify falls back to
    the bare string when it cannot) and equals itself."""
    from profit_rl.rewards.answers import answer_readings
    from profit_rl.rewards.verify import _WARM_UP_ANSWERS, _WARM_UP_PAIRS, _parse

    assert len(set(_WARM_UP_ANSWERS)) == len(_WARM_UP_ANSWERS) > 50
    answers = [*_WARM_UP_ANSWERS, *(answer for pair in _WARM_UP_PAIRS for answer in pair)]
    parsed = {a: _parse(answer_readings(a)) for a in answers}
    unread = [a for a, p in parsed.items() if len(p) < 2 or isinstance(p[0], str)]
    assert not unread
    not_equal = [a for a in _WARM_UP_ANSWERS if score_answer(a, a, extracted=True, shortcut=False) != ("ok", 1.0)]
    assert not not_equal


def test_verify_extracted_pairs(pool):
    assert pool.verify([("\\frac{1}{2}", "0.5"), ("3", "4"), ("\\pi", "\\pi")]) == [1.0, 0.0, 1.0]
    scores, outcomes, stats = pool.verify_detailed([("1", "1"), ("", "1"), ("1", "2^{2^{2^{2^{2^{2}}}}}")])
    assert scores == [1.0, None, 0.0] and stats.timeouts == 1
    assert [o for o, _ in outcomes] == ["ok", "gold_unparseable", "timeout"] and "deadline" in outcomes[2][1]


def test_accuracy_reward_trl_signature(pool):
    logged = {}
    conversational = [[{"role": "assistant", "content": "... \\boxed{\\frac{1}{2}}"}], [{"role": "assistant", "content": "no idea"}]]
    scores = accuracy_reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=conversational,
        answer=["0.5", "0.5"],
        completion_ids=[[1, 2], [3]],
        trainer_state=None,
        log_metric=lambda name, value: logged.setdefault(name, value),
        log_extra=lambda column, values: None,
        pool=pool,
    )
    assert scores == [1.0, 0.0]
    assert logged["rewards/timeouts"] == 0.0 and logged["rewards/errors"] == 0.0
    assert logged["rewards/no_answer"] == 0.5
    assert accuracy_reward(["\\boxed{4}", "\\boxed{5}"], answer=["4", "4"], pool=pool) == [1.0, 0.0]


def test_format_reward():
    completions = ["work... \\boxed{3}", "3", "\\boxed{}", "\\boxed{3", [{"role": "assistant", "content": "\\boxed{x}"}]]
    assert format_reward(completions) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_accuracy_reward_reads_answer_or_solution(pool):
    """TRL's and open-r1's math datasets name the gold `solution` (a bare answer or a worked solution)."""
    completions = ["so \\boxed{42}", "so \\boxed{41}"]
    worked = ["6 * 7 = 42, so the answer is \\boxed{42}.", "\\boxed{42}"]
    assert accuracy_reward(completions, solution=worked, pool=pool) == [1.0, 0.0]
    assert accuracy_reward(completions, solution=["42", "42"], pool=pool) == [1.0, 0.0]
    assert accuracy_reward(completions, answer=["42", "41"], solution=["0", "0"], pool=pool) == [1.0, 1.0]
    with pytest.raises(ValueError, match="'answer' or 'solution'"):
        accuracy_reward(completions, problem=["q", "q"], pool=pool)


ADVERSARIAL = [
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",  # exponent tower: CPython big-int power in one C call
    "\\boxed{9^{9^{9^{9^{9}}}}}",
    "\\boxed{10^{10^{10^{10}}}!}",
    "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",  # deep nested braces
    "\\boxed{" + "\\frac{1}{" * 1500 + "2" + "}" * 1500 + "}",
    "x" * (1 << 20) + "\\boxed{\\frac{1}{2}}",  # 1 MB completion: only its tail is read
    "\\boxed{\\frac{1}{}}",  # malformed LaTeX
    "\\boxed{\\sqrt[}{2}}",
    "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 \\end{matrix}}",
    "\\boxed{\\left( 1, 2 \\right.}",
    "\\boxed{)(][}{}",
    "\\boxed{\\int_0^{\\infty} e^{-x^{x^{x^{x}}}} dx}",
]


@pytest.mark.slow
def test_adversarial_inputs_finish_within_deadline(pool):
    timeout = pool.timeout
    golds = ["\\frac{1}{2}"] * len(ADVERSARIAL)
    scores, stats = pool.score(golds, ADVERSARIAL)
    assert len(scores) == len(ADVERSARIAL)
    assert stats.max_item_seconds <= timeout + 0.5
    assert stats.timeouts >= 1  # the towers really do hang math-verify: the deadline, not luck, ended them
    assert scores[5] == 1.0  # the 1 MB completion was scored on its tail
    assert all(s == 0.0 for i, s in enumerate(scores) if i != 5)
    # the pool replaced the killed workers and still works
    again, again_stats = pool.score(["2"], ["\\boxed{2}"])
    assert again == [1.0] and again_stats.timeouts == 0
    assert all(os.path.exists(f"/proc/{pid}") for pid in pool.worker_pids())


def test_close_leaves_no_process():
    pool = VerifierPool(num_workers=2, timeout=1.0).start()
    pids = pool.worker_pids()
    pool.score(["2"], ["\\boxed{2^{2^{2^{2^{2^{2}}}}}}"])  # leave one item hanging until the deadline
    pool.close()
    assert not any(_alive(pid) for pid in pids + pool.worker_pids())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose (its parent has not reaped it yet)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.slow
def test_killed_caller_leaves_no_orphans():
    """SIGKILL the process that owns the pool while a worker is stuck in sympy: every worker must die with it."""
    script = textwrap.dedent(
        """
        import sys, threading
        from profit_rl.rewards.pool import VerifierPool
        if __name__ == "__main__":
            pool = VerifierPool(num_workers=2, timeout=60.0).start()
            print(" ".join(map(str, pool.worker_pids())), flush=True)
            pool.score(["1", "1"], ["\\\\boxed{2^{2^{2^{2^{2^{2}}}}}}"] * 2)  # both workers busy for 60 s
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    time.sleep(0.5)  # let the items reach the workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


@pytest.mark.slow
def test_timeouts_reach_the_trainer_metrics():
    """A completion that hangs sympy scores 0 and is counted in `rewards/timeouts` through TRL's log_metric."""
    logged = {}
    with VerifierPool(num_workers=2, timeout=0.5) as fast_deadline:
        scores = accuracy_reward(
            ["\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "\\boxed{4}"],
            answer=["4", "4"],
            log_metric=lambda name, value: logged.__setitem__(name, value),
            pool=fast_deadline,
        )
    assert scores == [0.0, 1.0]
    assert logged["rewards/timeouts"] == 1.0 and logged["rewards/errors"] == 0.0


def test_interrupted_batch_leaves_a_working_pool(monkeypatch):
    """An exception mid-batch (Ctrl-C in the trainer) must not leave workers holding stale items."""
    import profit_rl.rewards.pool as pool_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with VerifierPool(num_workers=1, timeout=5.0) as p:
        stale = p.worker_pids()
        with monkeypatch.context() as patch:
            patch.setattr(pool_module, "wait_for_any", interrupt)
            with pytest.raises(KeyboardInterrupt):
                p.score(["1"], ["\\boxed{1}"])
        scores, stats = p.score(["1", "2"], ["\\boxed{1}", "\\boxed{3}"])
        assert scores == [1.0, 0.0] and stats.errors == 0
        assert p.worker_pids() != stale  # the worker that held the interrupted item was replaced


TOWER = "\\boxed{2^{2^{2^{2^{2^{2}}}}}}"  # hangs sympy in one C call


def test_items_queued_behind_a_timeout_are_scored_by_the_replacement():
    """One worker holds all three items; the first hangs: it times out, and the two queued behind it still score."""
    with VerifierPool(num_workers=1, timeout=1.0) as p:
        scores, stats = p.score(["1", "2", "3"], [TOWER, "\\boxed{2}", "\\boxed{\\frac{6}{2}}"])
    assert scores == [0.0, 1.0, 1.0]
    assert stats.timeouts == 1 and stats.errors == 0 and stats.correct == 2
    assert stats.max_item_seconds <= 1.0 + 0.5


def test_a_worker_that_dies_errors_its_item_and_the_rest_are_scored():
    """A worker killed from outside (as the OOM killer would) mid-item: that item errors, the rest go elsewhere."""
    import threading

    with VerifierPool(num_workers=1, timeout=60.0) as p:
        victim = p.worker_pids()[0]
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        scores, outcomes, stats = p.verify_detailed([("1", "2^{2^{2^{2^{2^{2}}}}}"), ("2", "2"), ("3", "\\frac{6}{2}")])
        killer.join()
        assert scores == [0.0, 1.0, 1.0] and stats.errors == 1 and stats.seconds < 30
        assert outcomes[0][0] == "error" and "exited with code -9" in outcomes[0][1]
        assert p.worker_pids() != [victim] and not _alive(victim)


REWARD_CALLER = """
from profit_rl.rewards import accuracy_reward

print("caller's top level ran", flush=True)
scores = accuracy_reward(["so \\\\boxed{\\\\frac{8}{2}}", "\\\\boxed{5}"], answer=["4", "4"])
print("scores", scores, flush=True)
"""


@pytest.mark.parametrize("how", ["stdin", "unguarded script"])
def test_rewards_work_whatever_the_callers_main_module_is(how, tmp_path):
    """The workers never import the caller's __main__: a script read from stdin (which no process can re-read) and a
    script without an `if __name__ == "__main__":` guard (which would run again in every worker) both just work."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PROFIT_RL_REWARD_WORKERS="2")
    if how == "stdin":
        proc = subprocess.run([sys.executable, "-"], input=REWARD_CALLER, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    else:
        script = tmp_path / "train.py"
        script.write_text(REWARD_CALLER)
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("caller's top level ran") == 1
    assert "scores [1.0, 0.0]" in proc.stdout
