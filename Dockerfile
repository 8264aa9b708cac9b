# cca-cosim with everything it needs: QEMU, the cross toolchain, gdb-multiarch,
# the cosim package in .venv, the TCG plugin and the firmware images, all
# installed by ci/install.sh (the README's install path, step by step so the
# layers cache apart).  Default command: the whole test suite, as a non-root
# user, with no network.  `cosim` is on PATH:  docker run IMAGE cosim demo
#
# Build with ci/docker-check.sh, which creates the base image when no registry
# has it and passes this machine's package-registry settings as the BuildKit
# secret cosim-registry (see ci/docker-registry.sh and docs/docker.md).  By hand,
# where the base image's own apt sources and PyPI are reachable directly:
#   DOCKER_BUILDKIT=1 docker build -t cca-cosim .
ARG BASE=debian:trixie
FROM ${BASE}

LABEL org.opencontainers.image.title="cca-cosim" \
      org.opencontainers.image.description="Arm CCA platform on stock QEMU with a Python RMM; runs the cca-cosim test suite" \
      cca-cosim.image="1"

# COSIM_CACHE: the realm images (`cosim images fetch`, run by ci/install.sh),
# baked in at build time, readable by any user.  The user cosim is uid 1000
# (the cache mount below names it too: this builder expands no variables there).
ENV COSIM_RESULTS=/results \
    COSIM_CACHE=/var/cache/cca-cosim \
    PATH=/opt/cca-cosim/.venv/bin:$PATH
WORKDIR /opt/cca-cosim
RUN useradd --create-home --uid 1000 --shell /bin/bash cosim \
    && mkdir -p "$COSIM_RESULTS" "$COSIM_CACHE" \
    && chown cosim:cosim /opt/cca-cosim "$COSIM_RESULTS" "$COSIM_CACHE"

# 1. Debian packages, as root.  Only the scripts are copied, so a change to the
#    code does not redo this layer.
COPY ci/install.sh ci/apt-mirror.sh ci/docker-registry.sh ci/
RUN --mount=type=secret,id=cosim-registry,mode=0444 \
    ci/docker-registry.sh use ci/install.sh --only apt

# 2. The Python dependencies, as the user: needs pyproject.toml alone.
USER cosim
COPY --chown=cosim:cosim pyproject.toml ./
RUN --mount=type=secret,id=cosim-registry,mode=0444 \
    ci/docker-registry.sh use ci/install.sh --only deps

# 3. The code: the package (editable, as on a developer's machine), the TCG
#    plugin, the firmware images and the realm images.  apt is already done
#    and --no-apt says so.  The images fetch keeps its private apt tree (its
#    configuration names the mirror; its downloads) in $COSIM_CACHE/apt: a
#    BuildKit cache mount, so it never reaches the image and a rebuild after a
#    code change takes the packages from there instead of the network.
COPY --chown=cosim:cosim . .
RUN --mount=type=secret,id=cosim-registry,mode=0444 \
    --mount=type=cache,id=cca-cosim-images-apt,target=/var/cache/cca-cosim/apt,uid=1000,gid=1000 \
    ci/docker-registry.sh use ci/install.sh --no-apt
# The cache mount leaves its (empty, root-owned) mount point behind.
USER root
RUN rmdir /var/cache/cca-cosim/apt
USER cosim

# The suite, writing its JUnit report (and the traces of failed tests) under
# $COSIM_RESULTS.  ci/test.sh re-runs ci/install.sh, which finds everything in
# place and needs neither root nor the network.
CMD ["ci/test.sh"]
