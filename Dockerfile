# zh-steve + MineRL 1.0 (Minecraft 1.16.5, what VPT and STEVE-1 run in), headless under Xvfb.
# Not built in CI (it needs internet for MineRL's Gradle build and the Minecraft assets).
#
#   docker build -t zh-steve-minerl .
#   docker run --gpus all -v $PWD/weights:/app/weights -v $PWD/runs:/app/runs zh-steve-minerl \
#       --lang zh --agent-config configs/agent.yaml --episodes 1 --tasks wood --out runs/minerl-check
#
# Two Python environments, so the pins never fight:
#   /opt/minerl    MineRL 1.0 + gym 0.23.1 + numpy 1.23.5 (constraints/minerl-backend.txt): the env process
#   /opt/zh-steve  the agent: torch, transformers, numpy 2 (pyproject.toml)
# eval.run_tasks runs the env in /opt/minerl through --env-python (eval/envs/watchdog.py: numpy-free messages).
FROM ubuntu:22.04

ARG DEBIAN_FRONTEND=noninteractive
ARG MINERL_REF=v1.0.1
ARG TORCH_VERSION=2.13.0
# e.g. --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 for a CUDA build of torch
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# JDK 8 exactly (MineRL's MCP-Reborn build and runtime), Xvfb for headless rendering, a CJK font for overlays
RUN apt-get update && apt-get install -y --no-install-recommends \
        openjdk-8-jdk xvfb xauth python3.10 python3.10-venv python3-pip git ca-certificates \
        libgl1 libglib2.0-0 libxrender1 libxext6 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-8-openjdk-amd64

WORKDIR /app
COPY constraints/ /app/constraints/

# the env side: MineRL's pins, in its own venv (its first build downloads Gradle and Minecraft: internet)
RUN python3.10 -m venv /opt/minerl \
    && /opt/minerl/bin/pip install --no-cache-dir -r constraints/minerl-backend.txt \
    && /opt/minerl/bin/pip install --no-cache-dir -c constraints/minerl-backend.txt \
        "git+https://github.com/minerllabs/minerl@${MINERL_REF}"

# the agent side
COPY . /app
RUN python3.10 -m venv /opt/zh-steve \
    && /opt/zh-steve/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && /opt/zh-steve/bin/pip install --no-cache-dir -e ".[ray,video,gymnasium]" \
    && /opt/zh-steve/bin/pip install --no-cache-dir --no-deps cn-clip==1.6.0 open-clip-torch==3.3.0

ENV PATH=/opt/zh-steve/bin:$PATH
ENTRYPOINT ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", "python", "-m", "eval.run_tasks", \
            "--env", "minerl", "--env-python", "/opt/minerl/bin/python"]
CMD ["--help"]
