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


def pex_docker_image(name, pex, entry_point, title, description, cmd=(), expose=None, **kwargs):
    """The PEX `pex` that runs `entry_point` (for `./pants run` and `package`) and its image `name`.

    The image is built from two PEXes made here rather than from `pex` itself: `<pex>-deps` has
    only the third-party requirements and `<pex>-srcs` only the first-party code. Each is
    unpacked into /app/venv by a RUN step that bind-mounts it from the build context, so
    neither PEX nor pex's unpack cache ends up in a layer, and the venv is written once (a
    build stage plus `COPY --from` wrote the 1.3 GB torch venv three times: 163 s cold per
    image here, against 83 s this way). The layer cache must not depend on how an engine
    hashes mounted files: each RUN follows a COPY of its PEX's PEX-INFO, which names every
    distribution with its hash (deps) or hashes the code (srcs), so the large venv layer is
    rebuilt exactly when the requirements change, and a code change rebuilds and pushes only
    the small sources layer. GIT_COMMIT (the OCI revision label, an environment variable and
    a tag) is set after the layers for the same reason. Runs as a non-root user. BASE_IMAGE
    defaults to Docker Hub's python:3.11-slim. `RUN --mount` needs BuildKit (Docker 23+, the
    default) or podman/buildah.
    """
    # Tools, so that `PEX_TOOLS=1 python3.11 dist/.../<pex>.pex venv DIR` unpacks it (torchrun).
    pex_binary(name=pex, entry_point=entry_point, include_tools=True)
    deps_pex, srcs_pex = pex + "-deps", pex + "-srcs"
    # Packed (the root BUILD's default) + tools: the Dockerfile unpacks each into a venv.
    pex_binary(
        name=deps_pex,
        # Not a dependency on `pex`: the image's build context would then carry that PEX too.
        entry_point=entry_point,
        include_sources=False,
        include_tools=True,
        description="The third-party requirements of :" + pex + ", for " + name + "'s deps layer",
    )
    pex_binary(
        name=srcs_pex,
        entry_point=entry_point,
        include_requirements=False,
        include_tools=True,
        description="The first-party code of :" + pex + ", for " + name + "'s sources layer",
    )
    context_dir = str(build_file_dir()).replace("/", ".")
    cmd_json = "[" + ", ".join('"' + part + '"' for part in cmd) + "]"

    def venv_layer(pex_name, scope):
        # The PEX-INFO copy keys the cache (see above); PEX_ROOT on a tmpfs, because pex unzips
        # its wheels there before copying them into the venv.
        pex_path = context_dir + "/" + pex_name + ".pex"
        return [
            "COPY " + pex_path + "/PEX-INFO /app/" + scope + ".pex-info",
            "RUN --mount=type=bind,source=" + pex_path + ",target=/tmp/" + scope + ".pex"
            + " --mount=type=tmpfs,target=/tmp/pex-root PEX_ROOT=/tmp/pex-root PEX_TOOLS=1"
            + " python3 /tmp/" + scope + ".pex venv --scope=" + scope + " --compile /app/venv",
        ]

    instructions = [
        "ARG BASE_IMAGE=python:3.11-slim",
        "FROM ${BASE_IMAGE}",
        "RUN useradd --create-home --uid 10001 app",
        *venv_layer(deps_pex, "deps"),
        *venv_layer(srcs_pex, "srcs"),
        "ARG GIT_COMMIT=unknown",
        'LABEL org.opencontainers.image.title="' + title + '"'
        + ' org.opencontainers.image.description="' + description + '"'
        + ' org.opencontainers.image.revision="${GIT_COMMIT}"',
        # ml_core's run metadata reads GIT_COMMIT where there is no .git to ask.
        "ENV GIT_COMMIT=${GIT_COMMIT} PYTHONUNBUFFERED=1",
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
        dependencies=[":" + deps_pex, ":" + srcs_pex, "//:image-definition"],
        image_tags=["latest", "{build_args.GIT_COMMIT}"],
        **kwargs,
    )
