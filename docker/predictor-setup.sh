#!/bin/sh
# Runs as root while `bentoml containerize` builds the predictor image (bentofile.yaml,
# docker.setup_script), after the image's user "bentoml" (uid 1034) exists.
#
# BentoML 1.4 validates -- and creates when missing -- bentos/, models/, envs/ and tmp/ under
# BENTOML_HOME (/home/bentoml/) at every start, even when it serves the Bento baked into the
# image. The generated Dockerfile creates only /home/bentoml/bento, so under the chart's
# readOnlyRootFilesystem the server would die at start (EROFS). Serving never writes into
# them (models load from the Bento's own models/), so they only have to exist: created here,
# empty, owned by the image's user. Everything the server does write goes to /tmp and the
# spool, the pod's emptyDirs (docs/predictor.md, "The container's filesystem").
set -eu
home="${BENTOML_HOME:-/home/bentoml/}"
for d in bentos models envs tmp; do
  mkdir -p "${home%/}/$d"
done
chown bentoml:bentoml "${home%/}/bentos" "${home%/}/models" "${home%/}/envs" "${home%/}/tmp"
