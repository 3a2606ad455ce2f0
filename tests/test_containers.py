"""The container recipes (containers/) refer to files that exist, pass hadolint, carry
scripts/env.sh's environment, and document the commands containers/README.md gives.

No container engine runs where these tests run, so the images are not built here; what can
go stale without a build is checked instead.
"""

import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
DOCKERFILES = ("containers/firedrake/Dockerfile", "containers/issm/Dockerfile")
DEFS = ("containers/firedrake/fdassim.def", "containers/issm/issm.def")
README = "containers/README.md"
CHECKOUT = "/opt/fdassim"  # where the recipes put the checkout
COMMAND = re.compile(r"^(docker|apptainer|mpiexec|srun) ")


def _text(rel: str) -> str:
    with open(os.path.join(ROOT, rel)) as fh:
        return fh.read()


def _exists(rel: str) -> bool:
    return os.path.exists(os.path.join(ROOT, rel))


def _dockerfile(rel: str):
    dockerfile = pytest.importorskip("dockerfile", reason="the Dockerfile parser is a test extra (make install)")
    return dockerfile.parse_file(os.path.join(ROOT, rel))


def _def_sections(rel: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """An Apptainer definition file: its header (``Key: value``) and its ``%sections``' lines."""
    header, sections, current = {}, {}, None
    for line in _text(rel).splitlines():
        stripped = line.strip()
        if stripped.startswith("%"):
            current = sections.setdefault(stripped[1:].split()[0], [])
        elif current is not None:
            if stripped and not stripped.startswith("#"):
                current.append(stripped)
        elif ":" in stripped and not stripped.startswith("#"):
            key, value = stripped.split(":", 1)
            header[key.strip()] = value.strip()
    return header, sections


def _header_commands(rel: str) -> list[str]:
    """The commands a recipe's header comment documents (``#   docker build ...``)."""
    out = []
    for line in _text(rel).splitlines():
        if not line.startswith("#"):
            continue
        body = line.lstrip("#").strip()
        if COMMAND.match(body):
            out.append(body)
    return out


def _readme_commands() -> list[str]:
    """Every command line of containers/README.md's ``sh`` blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", _text(README), flags=re.S)
    parts = [part.strip() for block in blocks for line in block.splitlines() for part in line.split(" && ")]
    return [part for part in parts if COMMAND.match(part)]


def _icepack_dir_in_image() -> str:
    """Where scripts/install.sh looks for the Icepack archive in an image whose checkout is
    ``/opt/fdassim``: ``../shared/third_party`` of constraints.txt, resolved there."""
    archive = re.search(r"^# icepack-archive: *(\S+)$", _text("constraints.txt"), flags=re.M).group(1)
    return posixpath.normpath(posixpath.join(CHECKOUT, posixpath.dirname(archive)))


def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", _text("Makefile"), flags=re.M))


def _checkout_paths(text: str) -> list[str]:
    """Paths inside the image's checkout that a command names, relative to it (the virtual
    environment and the cache are made by the install, not copied)."""
    rels = re.findall(re.escape(CHECKOUT) + r"/([\w./-]+)", text)
    return [r for r in rels if not r.startswith(".venv")]


# -- the recipes refer to files that exist --------------------------------------------------
@pytest.mark.parametrize("rel", DOCKERFILES)
def test_dockerfile_copies_and_calls_files_that_exist(rel):
    commands = _dockerfile(rel)
    copies = [c for c in commands if c.cmd == "COPY"]
    runs = " ".join(" ".join(c.value) for c in commands if c.cmd in ("RUN", "CMD"))
    stages = {c.value[2] for c in commands if c.cmd == "FROM" and len(c.value) == 3 and c.value[1].upper() == "AS"}
    for c in copies:
        assert not any(f.startswith("--from") for f in c.flags)
        for src in c.value[:-1]:
            assert _exists(src), f"{rel}: COPY source {src!r} is not in the checkout"
    for script in re.findall(r"\b(scripts/[\w./-]+)", runs):
        assert _exists(script), f"{rel}: RUN calls {script!r}, which does not exist"
    for target in re.findall(r"\bmake (?:-C \S+ )?([\w-]+)", runs):
        assert target in _make_targets(), f"{rel}: `make {target}` is not a Makefile target"
    for path in _checkout_paths(runs):
        assert _exists(path), f"{rel}: names {CHECKOUT}/{path}, which the checkout lacks"
    # the Icepack archive's directory is mounted where scripts/install.sh looks for it, from
    # a stage of the recipe (so that a build without --build-context still works)
    for c in commands:
        for flag in c.flags:
            if flag.startswith("--mount="):
                opts = dict(kv.split("=", 1) for kv in flag[len("--mount="):].split(","))
                assert opts["from"] in stages
                assert opts["target"] == _icepack_dir_in_image()
    if rel.endswith("firedrake/Dockerfile"):
        assert any(c.cmd == "RUN" and "make install" in " ".join(c.value) for c in commands)
        # everything the install reads is copied
        copied = {src.rstrip("/") for c in copies for src in c.value[:-1]}
        assert {"constraints.txt", "pyproject.toml", "Makefile", "README.md", "scripts", "fdassim",
                "issm_bridge"} <= copied


def test_dockerignore_keeps_every_copied_file():
    """The build context is the repository's root filtered by .dockerignore: nothing a COPY
    needs is filtered out, and the virtual environment is."""
    import fnmatch

    patterns = [p.strip() for p in _text(".dockerignore").splitlines() if p.strip() and not p.startswith("#")]
    assert ".venv" in patterns and ".git" in patterns
    for rel in DOCKERFILES:
        for c in _dockerfile(rel):
            if c.cmd == "COPY":
                for src in c.value[:-1]:
                    src = src.rstrip("/")
                    hit = [p for p in patterns if fnmatch.fnmatch(src, p) or fnmatch.fnmatch(src, p.replace("**/", ""))]
                    assert not hit, f"{rel}: COPY {src} is excluded by .dockerignore {hit}"


@pytest.mark.parametrize("rel", DEFS)
def test_apptainer_definition_refers_to_files_that_exist(rel):
    header, sections = _def_sections(rel)
    assert header["Bootstrap"] in ("docker", "localimage")
    for line in sections.get("files", []):
        src, dest = line.split()
        assert _exists(src), f"{rel}: %files source {src!r} is not in the checkout"
        assert dest == f"{CHECKOUT}/{src}", f"{rel}: {src} goes to {dest}, not into the checkout"
    scripts = " ".join(sections.get("post", []) + sections.get("test", []) + sections.get("environment", []))
    for path in _checkout_paths(scripts):
        assert _exists(path), f"{rel}: names {CHECKOUT}/{path}, which the checkout lacks"
    for target in re.findall(r"\bmake -C \S+ ([\w-]+)", scripts):
        assert target in _make_targets()
    if rel.endswith("fdassim.def"):
        assert header["From"] == "debian:12"
        assert any("make -C /opt/fdassim install" in s for s in sections["post"])
        # the mount point for the Icepack archive is where scripts/install.sh looks
        assert any(_icepack_dir_in_image() in s for s in sections["setup"])


def test_issm_images_are_built_on_the_fdassim_images():
    """The ISSM recipes start from the image the fdassim recipes' documented build makes."""
    docker_tag = re.search(r"docker build -f containers/firedrake/Dockerfile -t (\S+) \.", _text(README)).group(1)
    sif = re.search(r"apptainer build (\S+\.sif) containers/firedrake/fdassim\.def", _text(README)).group(1)
    base = [c for c in _dockerfile("containers/issm/Dockerfile") if c.cmd == "ARG"][0].value[0]
    assert base == f"BASE={docker_tag}"
    header, _ = _def_sections("containers/issm/issm.def")
    assert header == {"Bootstrap": "localimage", "From": sif}
    # the images are tagged with the package's version
    version = re.search(r'^version = "([^"]+)"', _text("pyproject.toml"), flags=re.M).group(1)
    assert docker_tag == f"fdassim:{version}"


# -- the environment is scripts/env.sh's ------------------------------------------------------
def test_container_environment_is_scripts_env():
    """The Dockerfile's ENV holds what scripts/env.sh exports (same names, same values); the
    Apptainer image sources the file itself."""
    out = subprocess.run(["env", "-i", "bash", "-c", f". {shlex.quote(ROOT)}/scripts/env.sh && env -0"],
                         capture_output=True, text=True, check=True).stdout
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    exported = {k: v for k, v in env.items() if k not in ("PWD", "SHLVL", "_", "OLDPWD")}
    assert "OMPI_ALLOW_RUN_AS_ROOT" in exported  # OpenMPI as Docker's root user
    dockerenv = {}
    for c in _dockerfile("containers/firedrake/Dockerfile"):
        if c.cmd == "ENV":
            # the parser keeps a value's quotes, which Docker removes
            dockerenv.update((k, " ".join(shlex.split(v))) for k, v in zip(c.value[::2], c.value[1::2]))
    assert {k: dockerenv.get(k) for k in exported} == exported
    assert dockerenv["PATH"].startswith(f"{CHECKOUT}/.venv/bin:")
    _, sections = _def_sections("containers/firedrake/fdassim.def")
    assert f". {CHECKOUT}/scripts/env.sh" in sections["environment"]
    assert f"export PATH={CHECKOUT}/.venv/bin:$PATH" in sections["environment"]


# -- linted ---------------------------------------------------------------------------------
def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (a test extra on x86_64: make install)")
    res = subprocess.run([hadolint, "--config", os.path.join(ROOT, "containers/.hadolint.yaml"),
                          *(os.path.join(ROOT, d) for d in DOCKERFILES)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# -- the documented commands -----------------------------------------------------------------
def test_recipe_headers_document_the_readmes_commands():
    """Each command a recipe's header gives is in containers/README.md, word for word, and
    the README documents a build of every recipe."""
    readme = _readme_commands()
    for rel in DOCKERFILES + DEFS:
        header = _header_commands(rel)
        assert any(rel in cmd and " build " in f" {cmd} " for cmd in header), f"{rel} documents no build"
        missing = [cmd for cmd in header if cmd not in readme]
        assert not missing, f"{rel}: header commands not in {README}: {missing}"
        assert any(rel in cmd for cmd in readme if " build " in cmd)


def _inner(tokens: list[str]) -> list[str]:
    """The command run inside the container, from a `docker run` / `apptainer exec` line."""
    while tokens[0] in ("mpiexec", "srun"):  # launchers outside or inside the container
        i = 1
        while tokens[i].startswith("-"):
            i += 1 if "=" in tokens[i] else 2
        tokens = tokens[i:]
    if tokens[:2] == ["docker", "run"]:
        i = next(i for i, t in enumerate(tokens) if re.match(r"^fdassim(-issm)?:", t))  # the image
        return _inner(tokens[i + 1:])
    if tokens[:2] == ["apptainer", "exec"]:
        i = next(i for i, t in enumerate(tokens) if t.endswith(".sif"))
        return _inner(tokens[i + 1:])
    return tokens


def test_readme_commands_are_valid():
    """Every command in containers/README.md names recipes that exist and runs, inside the
    container, a command whose arguments fdassim / issm-bridge / make accept."""
    from fdassim.cli import build_parser as fdassim_parser
    from issm_bridge.cli import build_parser as bridge_parser

    commands = _readme_commands()
    assert len(commands) >= 10
    ran = set()
    for cmd in commands:
        tokens = shlex.split(cmd)
        if tokens[1] == "build":
            if tokens[0] == "docker":
                rel = tokens[tokens.index("-f") + 1]
                assert _exists(rel) and tokens[-1] == ".", cmd
                for i, t in enumerate(tokens):
                    if t == "--build-context":
                        name = tokens[i + 1].split("=", 1)[0]
                        assert f"FROM scratch AS {name}" in _text(rel), cmd
            else:
                assert _exists(tokens[-1]) and tokens[-2].endswith(".sif"), cmd
                if "--bind" in tokens:
                    assert tokens[tokens.index("--bind") + 1].split(":")[1] == _icepack_dir_in_image()
            continue
        inner = _inner(tokens)
        ran.add(inner[0])
        for path in _checkout_paths(" ".join(inner)):  # files of the image's checkout it names
            assert _exists(path), f"{README}: {cmd} names {CHECKOUT}/{path}, which the checkout lacks"
        if inner[0] in ("fdassim", "issm-bridge"):
            parser = fdassim_parser() if inner[0] == "fdassim" else bridge_parser()
            try:
                parser.parse_args(inner[1:])
            except SystemExit:  # argparse's way of refusing arguments
                pytest.fail(f"{README}: `{' '.join(inner)}` is refused by {inner[0]}: {cmd}")
        elif inner[0] == "make":
            assert inner[1:3] == ["-C", CHECKOUT] and inner[3] in _make_targets(), cmd
        elif inner[0] == "python":
            assert _checkout_paths(inner[1]) and _exists(_checkout_paths(inner[1])[0]), cmd
        else:
            pytest.fail(f"{README}: unexpected command inside the container: {cmd}")
    assert {"fdassim", "issm-bridge", "make", "python"} <= ran


def test_project_readme_points_to_the_containers():
    text = _text("README.md")
    assert "containers/README.md" in text
    assert "docker build -f containers/firedrake/Dockerfile" in text
