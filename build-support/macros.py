# Loaded by Pants as a BUILD file prelude ([GLOBAL].build_file_prelude_globs): macros and
# constants every BUILD file can use.
#
# A resolve is named in three places, as few as Pants 2.17 allows: [python.resolves] in
# pants.toml (Pants reads resolves only from options), the table below (which shared libs are
# built for it, and 3rdparty/python/BUILD's requirements target), and the `__defaults__` of the
# project that owns it. `./pants run tools/scaffold:new-project -- <name>` writes all three.
#
# One row per project resolve: its name, then what its lockfile gives shared code: "torch" (CPU
# torch, for libs/ml_core's device module), "lm" (torch + transformers, for libs/lm) and
# "vision" (torch + matplotlib, for libs/vision: the digit data, the CNN, its training loop).
# (Prelude values must be hashable, hence tuples rather than a dict.)
PROJECT_RESOLVES = (
    # The shared libs' own tests and binaries, and the repository's tools: no project's.
    ("libs", "torch", "lm"),
    ("mnist", "torch", "vision"),
    ("feature-selection",),
    ("neuron-audit", "torch", "lm"),
    ("kv-serve", "torch", "lm"),
    ("rlhf", "torch", "lm"),
    ("adversarial", "torch", "vision"),
    ("few-shot", "torch", "lm"),
)
# Pinned tool versions (pytest, mypy, black/isort/flake8/docformatter); no code builds in them.
TOOL_RESOLVES = ("pytest", "mypy", "lint")

ALL_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES)
TORCH_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "torch" in row[1:])
LM_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "lm" in row[1:])
VISION_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "vision" in row[1:])


def pex_docker_image(name, pex, title, description, cmd=(), expose=None, **kwargs):
    """A docker_image that runs the packed PEX target `pex` (which needs `include_tools=True`).

    Dependencies and sources are unpacked into a venv in separate stages, so a code change
    rebuilds only the small sources layer. Runs as a non-root user. BASE_IMAGE defaults to
    Docker Hub's python:3.11-slim; GIT_COMMIT becomes the OCI revision label and a tag.
    """
    pex_path = str(build_file_dir()).replace("/", ".") + "/" + pex + ".pex"
    cmd_json = "[" + ", ".join('"' + part + '"' for part in cmd) + "]"
    stage = [
        "COPY " + pex_path + " /tmp/app.pex",
    ]
    instructions = [
        "ARG BASE_IMAGE=python:3.11-slim",
        "FROM ${BASE_IMAGE} AS deps",
        *stage,
        "RUN PEX_TOOLS=1 python3 /tmp/app.pex venv --scope=deps --compile /app/venv",
        "FROM ${BASE_IMAGE} AS srcs",
        *stage,
        "RUN PEX_TOOLS=1 python3 /tmp/app.pex venv --scope=srcs --compile /app/venv",
        "FROM ${BASE_IMAGE}",
        "ARG GIT_COMMIT=unknown",
        'LABEL org.opencontainers.image.title="' + title + '"'
        + ' org.opencontainers.image.description="' + description + '"'
        + ' org.opencontainers.image.revision="${GIT_COMMIT}"',
        # ml_core's run metadata reads GIT_COMMIT where there is no .git to ask.
        "ENV GIT_COMMIT=${GIT_COMMIT} PYTHONUNBUFFERED=1",
        "RUN useradd --create-home --uid 10001 app",
        "COPY --from=deps /app /app",
        "COPY --from=srcs /app /app",
        "USER app",
        "WORKDIR /home/app",
        *(["EXPOSE " + str(expose)] if expose else []),
        'ENTRYPOINT ["/app/venv/pex"]',
        "CMD " + cmd_json,
    ]
    docker_image(
        name=name,
        instructions=instructions,
        # The prelude, pants.toml and the launcher shape the image too: see the root BUILD.
        dependencies=[":" + pex, "//:image-definition"],
        image_tags=["latest", "{build_args.GIT_COMMIT}"],
        **kwargs,
    )
