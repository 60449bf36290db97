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
# Pinned tool versions (pytest, mypy, black/isort/flake8/docformatter) and the torch layer that
# every torch image shares (image-layers); no code builds in them.
TOOL_RESOLVES = ("pytest", "mypy", "lint", "image-layers")

ALL_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES)
TORCH_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "torch" in row[1:])
LM_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "lm" in row[1:])
VISION_RESOLVES = tuple(row[0] for row in PROJECT_RESOLVES if "vision" in row[1:])

# PEXes of shared image layers (3rdparty/python/BUILD, resolve image-layers), for an image's
# `layers=`: torch and its closure, for every torch image; transformers, datasets and theirs,
# stacked on it, for the images of LM resolves.
TORCH_LAYER = "3rdparty/python:torch-layer"
LM_LAYER = "3rdparty/python:lm-layer"
TORCH_LAYERS = (TORCH_LAYER,)
LM_LAYERS = (TORCH_LAYER, LM_LAYER)


def pex_docker_image(
    name, pex, entry_point, title, description, cmd=(), expose=None, layers=(), **kwargs
):
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

    `layers` (TORCH_LAYERS for an image whose resolve locks torch, LM_LAYERS for one that also
    locks transformers and datasets) stacks shared PEXes, each in a layer of its own, below the
    deps layer: every image with the same layers starts with the same instructions and the same
    PEX-INFOs, so an engine builds each shared layer once (torch: 881 MB) and a registry stores it
    once. The deps layer then skips what they hold: pex's venv installer hard-links each file
    from PEX_ROOT and leaves a file that already exists alone (hence PEX_ROOT on the image's own
    file system, removed in the same step), and compileall skips bytecode that is up to date.
    Because existing files win, the deps step first checks that the resolve locks exactly each
    layer's distributions and stops, naming them, when it does not.
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

    def venv_layer(pex_path, label, scope, before=""):
        # The PEX-INFO copy keys the cache (see above). pex unzips the wheels into PEX_ROOT and
        # hard-links them into the venv: on the image's file system and removed in the same step,
        # PEX_ROOT costs one write and leaves nothing in the layer.
        return [
            "COPY " + pex_path + "/PEX-INFO /app/" + label + ".pex-info",
            "RUN --mount=type=bind,source=" + pex_path + ",target=/tmp/" + label + ".pex "
            + before
            + "PEX_ROOT=/tmp/pex-root PEX_TOOLS=1 python3 /tmp/" + label + ".pex venv --scope="
            + scope
            + " --compile /app/venv && rm -rf /tmp/pex-root",
        ]

    # Every distribution of each shared layer must be in the deps PEX with the same fingerprint:
    # the deps step keeps the files the layers put there, so a different version would mix in.
    layer_labels = [address.split(":")[1] for address in layers]
    same_layers = (
        "python3 -c 'import json, sys; deps = json.load(open(\"/app/deps.pex-info\"));"
        + " layers = [json.load(open(\"/app/\" + label + \".pex-info\"))"
        + " for label in sys.argv[1:]];"
        + " different = sorted({name for layer in layers for name, fingerprint in"
        + " layer[\"distributions\"].items() if deps[\"distributions\"].get(name) != fingerprint});"
        + " sys.exit(\"" + name + ": the resolve does not lock these distributions of its shared"
        + " layers (3rdparty/python/image-layers.lock): \" + \", \".join(different) + \"; lock the"
        + " same ones, or drop them from layers=\" if different else None)' "
        + " ".join(layer_labels)
        + " && "
    )
    instructions = [
        "ARG BASE_IMAGE=python:3.11-slim",
        "FROM ${BASE_IMAGE}",
        "RUN useradd --create-home --uid 10001 app",
        *(
            instruction
            for address, label in zip(layers, layer_labels)
            # Where Pants puts a packaged PEX in the build context: <dir with dots>/<name>.pex.
            for instruction in venv_layer(
                address.replace("/", ".").replace(":", "/") + ".pex", label, "deps"
            )
        ),
        *venv_layer(
            context_dir + "/" + deps_pex + ".pex", "deps", "deps", same_layers if layers else ""
        ),
        *venv_layer(context_dir + "/" + srcs_pex + ".pex", "srcs", "srcs"),
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
        dependencies=[
            ":" + deps_pex,
            ":" + srcs_pex,
            "//:image-definition",
            *("//" + address for address in layers),
        ],
        image_tags=["latest", "{build_args.GIT_COMMIT}"],
        **kwargs,
    )
