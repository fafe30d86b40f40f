"""collector/build.sh: its contract without a real build (a stub `go` stands in for the toolchain).

The stub's builder does what ocb does with the manifest copy build.sh writes: it creates the binary
under ``dist.output_path``. Both print noise on stdout, which build.sh must keep off its own stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.collector import COLLECTOR_DIR

BUILD = COLLECTOR_DIR / "build.sh"
STUB_GO = r"""#!/bin/bash
echo "$*" >>"$GO_CALLS"
[[ -n ${GO_FORBIDDEN:-} ]] && { echo "go must not run: $*" >&2; exit 97; }
case "$1" in
  env) echo go1.26.0 ;;
  install)
    echo "noise from go install"
    mkdir -p "$GOBIN"
    cat >"$GOBIN/builder" <<'BUILDER'
#!/bin/bash
echo "noise from the builder"
out=$(sed -n 's/^  output_path: //p' "$2")
mkdir -p "$out"
printf '#!/bin/sh\necho otelcol-otelkit stub\n' >"$out/otelcol-otelkit"
chmod +x "$out/otelcol-otelkit"
BUILDER
    chmod +x "$GOBIN/builder" ;;
  *) exit 2 ;;
esac
"""
TOOLS = ["bash", "cat", "cut", "sha256sum", "dirname", "mkdir", "flock", "sed", "grep", "mktemp", "rm", "cp", "mv"]


@pytest.fixture
def stub_go(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(STUB_GO)
    go.chmod(0o755)
    return bin_dir


def build(cache: Path, path: str, calls: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": path,
        "HOME": str(cache.parent),
        "OTELKIT_CACHE_DIR": str(cache),
        "GO_CALLS": str(calls),
        "TMPDIR": str(cache.parent),
        **env,
    }
    return subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, env=environment, timeout=60)


def test_without_go_it_fails_with_a_message_saying_what_to_install(tmp_path: Path) -> None:
    only_tools = tmp_path / "tools"
    only_tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (only_tools / tool).symlink_to(found)
    result = build(tmp_path / "cache", str(only_tools), tmp_path / "calls")
    assert result.returncode != 0
    assert "'go' not found on PATH; install Go >= 1.26 to build the collector" in result.stderr
    assert result.stdout == ""


def test_too_old_a_go_is_refused_by_version(tmp_path: Path, stub_go: Path) -> None:
    (stub_go / "go").write_text("#!/bin/bash\n[[ $1 == env ]] && echo go1.22.5\n")
    result = build(tmp_path / "cache", f"{stub_go}:{os.environ['PATH']}", tmp_path / "calls")
    assert result.returncode != 0
    assert "Go >= 1.26 is required by the collector builder v0.161.0 (found go1.22.5)" in result.stderr
    assert result.stdout == ""


def test_stdout_is_only_the_binary_path_and_a_cache_hit_never_runs_go(tmp_path: Path, stub_go: Path) -> None:
    cache, calls = tmp_path / "cache", tmp_path / "calls"
    path = f"{stub_go}:{os.environ['PATH']}"

    first = build(cache, path, calls)
    assert first.returncode == 0, first.stderr
    binary = Path(first.stdout.removesuffix("\n"))
    assert first.stdout == f"{binary}\n"  # the builder's noise went to stderr
    assert "noise from the builder" in first.stderr
    assert binary.is_relative_to(cache / "collector") and os.access(binary, os.X_OK)
    assert subprocess.run([binary], capture_output=True, text=True).stdout == "otelcol-otelkit stub\n"
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["env", "install"]
    assert not list(tmp_path.glob("otelcol-otelkit-build.*")), "the temporary build directory is removed"

    calls.unlink()
    second = build(cache, path, calls, GO_FORBIDDEN="1")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert "cached:" in second.stderr
    assert not calls.exists(), "a cache hit ran go"


def test_a_changed_manifest_is_a_new_cache_key(tmp_path: Path, stub_go: Path) -> None:
    """The key is the manifest's content: a copy of collector/ with one edit builds anew."""
    copy = tmp_path / "collector"
    shutil.copytree(COLLECTOR_DIR, copy)
    cache, calls = tmp_path / "cache", tmp_path / "calls"
    path = f"{stub_go}:{os.environ['PATH']}"
    environment = {"PATH": path, "OTELKIT_CACHE_DIR": str(cache), "GO_CALLS": str(calls), "TMPDIR": str(tmp_path)}

    def run() -> str:
        result = subprocess.run(
            ["bash", str(copy / "build.sh")], capture_output=True, text=True, env=environment, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    original = run()
    manifest = copy / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.161.0-otelkit", "version: 0.161.0-otelkit-b"))
    assert run() != original
    assert len(list((cache / "collector").iterdir())) == 2
