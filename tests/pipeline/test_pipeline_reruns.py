"""Pipeline reruns (docs/reruns.md): done markers hold their inputs' run ids, not times; a step whose inputs ran again
reruns from an emptied folder with everything downstream; a killed step resumes only on the inputs it started with;
an unreadable marker names itself and the way out."""

import json
import os
import sys
import time

import pytest

from profit_rl.core.io import InputError
from profit_rl.pipeline.scheduler import run
from profit_rl.pipeline.steps import DONE, STARTED, Step


def counting_step(tmp_path, stage, name, inputs=(), tag="a", fail_once=False):
    """A step that counts its runs in <tmp>/<name>.runs, and writes its output (and a file it only writes once, as
    a checkpoint would be) into its folder; `fail_once` dies once after writing the checkpoint, like a killed step."""
    out = tmp_path / name.replace("/", "_")
    log = tmp_path / f"{name.replace('/', '_')}.runs"
    code = (
        "import pathlib, sys\n"
        f"out, log = pathlib.Path({str(out)!r}), pathlib.Path({str(log)!r})\n"
        "log.write_text(log.read_text() + 'x' if log.exists() else 'x')\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "first = not (out / 'checkpoint').exists()\n"
        "(out / 'checkpoint').touch()\n"
        f"if first and {fail_once!r}: sys.exit(9)\n"
        "(out / 'result').touch()\n"
    )
    return Step(stage, name, [sys.executable, "-c", code, tag], out, tuple(inputs))


def runs(tmp_path, step):
    path = tmp_path / f"{step.name.replace('/', '_')}.runs"
    return len(path.read_text()) if path.exists() else 0


def graph(tmp_path, data_tag="a", fail_once=False):
    data = counting_step(tmp_path, "data", "data", tag=data_tag)
    sft = counting_step(tmp_path, "sft", "sft", ("data",), fail_once=fail_once)
    evals = counting_step(tmp_path, "eval", "eval", ("data", "sft"))
    base = counting_step(tmp_path, "eval", "base")  # reads nothing
    return [data, sft, evals, base]


def test_a_done_marker_from_the_future_reruns_nothing(tmp_path, capsys):
    steps = graph(tmp_path)
    run(steps, cpus=1)
    future = time.time() + 86400  # a clock skew: the data step's marker is a day ahead
    os.utime(steps[0].output / DONE, (future, future))
    for _ in range(2):
        run(graph(tmp_path), cpus=1)
        assert capsys.readouterr().out.count("done, skipped") == 4
    assert [runs(tmp_path, s) for s in steps] == [1, 1, 1, 1]


def test_a_step_whose_inputs_ran_again_reruns_from_an_empty_folder_with_everything_downstream(tmp_path, capsys):
    run(graph(tmp_path), cpus=1)
    stale = tmp_path / "sft" / "adapter_config.json"  # what an earlier run left, that this one would not overwrite
    stale.touch()
    steps = graph(tmp_path, data_tag="b")  # the data step's command changed (other --task values)
    run(steps, cpus=1)
    out = capsys.readouterr().out
    assert [runs(tmp_path, s) for s in steps] == [2, 2, 2, 1]  # data, and all that reads it; not the base eval
    assert "sft: its finished run read an earlier run of data: emptying" in out
    assert not stale.exists() and (tmp_path / "sft" / "result").is_file()
    run(steps, cpus=1)
    assert [runs(tmp_path, s) for s in steps] == [2, 2, 2, 1]  # and then it is done


def test_an_edited_recipe_reruns_the_step_that_names_it(tmp_path, capsys):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("learning_rate: 1.0e-5\n")
    steps = graph(tmp_path)
    steps[1] = counting_step(tmp_path, "sft", "sft", ("data",), tag=str(recipe))
    run(steps, cpus=1)
    run(steps, cpus=1)
    assert [runs(tmp_path, s) for s in steps] == [1, 1, 1, 1]
    recipe.write_text("learning_rate: 2.0e-5\n")  # the same command, another recipe
    run(steps, cpus=1)
    assert [runs(tmp_path, s) for s in steps] == [1, 2, 2, 1]
    assert f"sft: {recipe} changed since its finished run: emptying" in capsys.readouterr().out


def test_a_killed_step_resumes_on_its_own_inputs_and_starts_over_on_new_ones(tmp_path, capsys):
    steps = graph(tmp_path, fail_once=True)
    with pytest.raises(SystemExit, match="step 'sft' failed"):
        run(steps, cpus=1)
    assert (tmp_path / "sft" / STARTED).is_file() and not (tmp_path / "sft" / DONE).exists()
    run(steps, cpus=1)  # the same inputs: the folder is kept, the step continues from its checkpoint
    assert runs(tmp_path, steps[1]) == 2 and "emptying" not in capsys.readouterr().out
    assert (tmp_path / "sft" / "result").is_file() and not (tmp_path / "sft" / STARTED).exists()

    # killed again, and then the data changes: the step's checkpoint was made from the earlier data, so its folder
    # is emptied and it starts over (here: dies again, before its result, as it does on a first run)
    other = tmp_path / "second"
    other.mkdir()
    with pytest.raises(SystemExit):
        run(graph(other, fail_once=True), cpus=1)
    steps = graph(other, data_tag="b", fail_once=True)
    with pytest.raises(SystemExit, match="step 'sft' failed"):
        run(steps, cpus=1)
    assert "sft: its started run read an earlier run of data: emptying" in capsys.readouterr().out
    assert runs(other, steps[1]) == 2 and not (other / "sft" / "result").exists()


@pytest.mark.parametrize("content", ["", '{"argv": ["py'])
def test_an_unreadable_done_marker_names_itself_and_the_way_out(tmp_path, content):
    steps = graph(tmp_path)
    run(steps, cpus=1)
    marker = steps[1].output / DONE
    marker.write_text(content)  # what a write in place left under a full disk
    with pytest.raises(InputError, match=rf"{marker}: this pipeline step's marker (is empty|is not valid JSON).*"
                                         rf"Delete it to run the step again: rm {marker}"):
        run(graph(tmp_path), cpus=1)


def test_a_step_recorded_under_a_moved_module_name_is_still_done(tmp_path):
    """A done marker written when the eval ran as `-m profit_rl.evals.cli` counts for `-m profit_rl.evals.evaluate`
    (the module was renamed, the command is the same), while another module or flag is another command."""
    from profit_rl.pipeline.steps import Step

    argv = ["python", "-m", "profit_rl.evals.evaluate", "--model", "m", "--k", "4"]
    step = Step("eval", "base/eval", argv, tmp_path)
    step.mark_done(1.0)
    recorded = json.loads((tmp_path / ".done.json").read_text())
    recorded["argv"] = ["python", "-m", "profit_rl.evals.cli", "--model", "m", "--k", "4"]
    (tmp_path / ".done.json").write_text(json.dumps(recorded))
    assert step.done()
    assert not Step("eval", "base/eval", argv[:-1] + ["8"], tmp_path).done()
    assert not Step("eval", "base/eval", ["python", "-m", "profit_rl.evals.compare", *argv[3:]], tmp_path).done()
