"""``up``'s promises with stand-in components (seconds, not a real stack): reuse, restart on a changed
config, and no half-started stack when a component fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from otelkit.devstack import StateDir, components, ports, stack, supervisor


def sleeper(name: str, directory: Path, argument: str = "a") -> components.Component:
    """Appends ``argument`` to ``directory/name`` at each start; healthy once this start's line is there."""
    marker = directory / name
    code = "import sys, time; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10)); time.sleep(600)"
    argv = [sys.executable, "-c", code, str(marker), argument]
    return components.Component(name, argv, name, lambda: starts(marker)[-1:] == [argument])


def starts(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def failing(name: str) -> components.Component:
    return components.Component(name, [sys.executable, "-c", "raise SystemExit('boom')"], name, lambda: False)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateDir:
    monkeypatch.setattr(stack, "COMPONENT_NAMES", ("one", "two", "three"))
    monkeypatch.setattr(stack, "PORT_OWNERS", {})
    monkeypatch.setattr(ports, "DEFAULT_PORTS", {})
    return StateDir(tmp_path)


def test_second_up_reuses_and_a_changed_config_restarts(state: StateDir, monkeypatch: pytest.MonkeyPatch) -> None:
    argument = {"two": "a"}
    monkeypatch.setattr(
        components, "build", lambda *a, **k: [sleeper("one", state.root), sleeper("two", state.root, argument["two"])]
    )
    try:
        stack.up(state, say=lambda line: None)
        first = supervisor.running(state, "one")
        stack.up(state, say=lambda line: None)
        assert supervisor.running(state, "one") == first
        assert starts(state.root / "one") == starts(state.root / "two") == ["a"]
        argument["two"] = "b"
        stack.up(state, say=lambda line: None)
        assert supervisor.running(state, "one") == first
        assert starts(state.root / "one") == ["a"]
        assert starts(state.root / "two") == ["a", "b"]  # only "two" started again
    finally:
        stack.down(state, say=lambda line: None)
    assert supervisor.running(state, "one") is None
    assert supervisor.running(state, "two") is None


def test_a_failing_component_stops_what_the_run_started(state: StateDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        components, "build", lambda *a, **k: [sleeper("one", state.root), failing("two"), sleeper("three", state.root)]
    )
    lines: list[str] = []
    with pytest.raises(stack.StackError, match="two did not come up: it exited"):
        stack.up(state, say=lines.append)
    assert supervisor.running(state, "one") is None
    assert supervisor.load(state, "three") is None  # never started
    assert any("boom" in line for line in lines)


def test_a_taken_port_moves_to_a_free_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        monkeypatch.setattr(ports, "DEFAULT_PORTS", {"prometheus": taken, "alertmanager": 0})
        chosen, notes = ports.allocate({}, set(), any_ports=False)
    assert chosen["prometheus"] != taken
    assert notes == [f"port {taken} is taken: prometheus uses {chosen['prometheus']}"]
