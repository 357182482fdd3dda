"""The command line: `avatarcast run | say | ask | chat | show | control | prepare |
models download | schema | doctor | serve-face`.

Exit codes: see `exits`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any, get_args

from ...broker.messages import (
    MAX_PROMPT_CHARS,
    MAX_TEXT_CHARS,
    SCENE_FIELDS,
    SETTABLE,
    AskMessage,
    ControlMessage,
    SceneLayer,
    SpeakMessage,
    invalid_message,
    json_schema,
)
from ...infra.errors import Unavailable, UserError
from ...infra.redact import global_redactor, secrets_of, setup_logging
from ...settings import Settings, SettingsError, load_settings
from .exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_AIRED,
    EXIT_OK,
    EXIT_TIMED_OUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    fail,
)

log = logging.getLogger("avatarcast")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avatarcast",
        description="Keep a talking avatar on a live RTMP stream, fed by RabbitMQ. "
        "Settings come from AVATARCAST_* variables and .env (see .env.dev.example).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT",
                   description="Go on air and speak the texts that arrive on the speak queue.")
    say = sub.add_parser("say", help="publish a speak message",
                         description="Publish a speak message and wait for the broker's confirm.")
    say.add_argument("text", help=f"what to say (1..{MAX_TEXT_CHARS} characters)")
    _utterance_args(say, "message")
    ask = sub.add_parser("ask", help="publish a question the LLM answers on air",
                         description="Publish an ask message: the LLM (llm settings) answers "
                         "and the avatar speaks the answer sentence by sentence as it streams.")
    ask.add_argument("prompt", help=f"the question (1..{MAX_PROMPT_CHARS} characters)")
    ask.add_argument("--system", help="instructions for this answer (default: llm.system)")
    ask.add_argument("--intro", help="spoken before the answer (\"Maria asks: ...\"), while "
                     "the LLM begins")
    _utterance_args(ask, "answer (printed once it aired)")
    chat = sub.add_parser(
        "chat", help="answer live chat on air (Twitch, YouTube, a webhook)",
        description="Read the chats configured in chat.* (AVATARCAST_CHAT__...), moderate "
        "them, choose what to answer at chat.per_minute, and publish each as an ask (\"Maria "
        "asks: ...\", then the LLM's answer) or thanks to the channel's speak queue, until "
        "SIGTERM/SIGINT.")
    _channel_arg(chat)
    show = sub.add_parser(
        "show", help="run a show: scheduled items and an idle rotation",
        description="Publish the items of a run-of-show file (TOML: announcements, scripts "
        "from a file or folder, topics for the LLM; cron times, intervals, or an idle "
        "rotation that fills silences without repeating itself) to the channel's speak "
        "queue, until SIGTERM/SIGINT.")
    show.add_argument("file", type=Path, help="the run-of-show file (see README)")
    _channel_arg(show)
    ctl = sub.add_parser("control", help="publish a control command",
                         description="skip: end what is on air; clear: also drop the backlog; "
                         "pause/resume: hold or release the queue; set: change the default "
                         "avatar, animator and/or voice from the next utterance on, without "
                         "restarting the stream; scene: show or hide a layer of the scene, or "
                         "reword the lower third or the ticker, from the next frame on; or "
                         "change the background behind the person, from the next text on.")
    ctl.add_argument("command", choices=["skip", "clear", "pause", "resume", "set", "scene"])
    _channel_arg(ctl)
    ctl.add_argument("--avatar", help="set: the default avatar (a prepared id)")
    ctl.add_argument("--animator", choices=["auto", "lite", "musetalk", "still", "remote"],
                     help="set: the default animator")
    ctl.add_argument("--voice", help="set: the default voice (the providers' voice name)")
    ctl.add_argument("--reset", action="append", choices=list(SETTABLE), default=[],
                     help="set: back to the configured avatar, animator or voice (repeatable)")
    ctl.add_argument("--layer", choices=list(get_args(SceneLayer)),
                     help="scene: the layer to change (music: the music bed)")
    shown = ctl.add_mutually_exclusive_group()
    shown.add_argument("--show", dest="visible", action="store_true", default=None,
                       help="scene: show the layer (music: play it)")
    shown.add_argument("--hide", dest="visible", action="store_false",
                       help="scene: hide it (music: stop it)")
    ctl.add_argument("--title", help="scene: the lower third's title")
    ctl.add_argument("--subtitle", help="scene: the lower third's subtitle")
    ctl.add_argument("--text", help="scene: the ticker's words")
    behind = ctl.add_mutually_exclusive_group()
    behind.add_argument("--color", help="scene: the background, a colour (#rrggbb)")
    behind.add_argument("--image", help="scene: the background, a picture in the scene "
                        "file's folder (--show: the scene file's; --hide: the avatar's own)")
    behind.add_argument("--video", help="scene: the background, a video in the scene file's "
                        "folder, played in a loop")
    prep = sub.add_parser(
        "prepare", help="prepare an avatar from an image or a video",
        description="Find the face in every frame of the source and store the avatar cache "
        "under avatar.avatars_dir/ID; run with AVATARCAST_AVATAR__ID=ID.")
    src = prep.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", type=Path, help="the idle cycle, played as a ping-pong loop")
    src.add_argument("--image", type=Path, help="a still portrait")
    prep.add_argument("--id", required=True, help="avatar id (letters, digits, . _ -)")
    prep.add_argument(
        "--talking", type=Path, metavar="VIDEO",
        help="a video of the same person speaking (a minute or two of reading aloud): its "
        "real mouths make the lite animator's mouth atlas")
    prep.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    models = sub.add_parser("models", help="manage model weights")
    msub = models.add_subparsers(dest="models_command", required=True)
    dl = msub.add_parser(
        "download", help="download the MuseTalk v1.5 weights into face.models_dir",
        description="Fetch the public MuseTalk v1.5 weights (UNet, VAE, whisper-tiny, face "
        "parsing) from the Hugging Face hub: resumable, checked against the hub's SHA-256.")
    dl.add_argument("--endpoint", help="hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    sub.add_parser("schema", help="print the JSON Schema of the wire messages")
    face = sub.add_parser(
        "serve-face", help="render faces for remote animators (a GPU box for CPU broadcasters)",
        description="Serve POST /v1/render (see face/remote_wire.py) with this machine's "
        "animator (face.animator: MuseTalk on a GPU, lite otherwise) and the avatars "
        "prepared in avatar.avatars_dir.")
    face.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1; use a private network)")
    face.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    sub.add_parser(
        "doctor", help="check everything the daemon needs",
        description="FFmpeg and its encoders, the broker, every output, the voices, the "
        "avatar, the GPU and MuseTalk weights, the state directory: a table; exit 3 when "
        "something needed is missing or broken.")
    return p


def _channel_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel", help="the channel (of a worker's channels file) to send "
                        "it to: its queues are the configured ones with .CHANNEL appended")


def _utterance_args(parser: argparse.ArgumentParser, what: str) -> None:
    """What `say` and `ask` share: the id, the voice, an interrupt, and --wait."""
    _channel_arg(parser)
    parser.add_argument("--id", help="message id (default: a new UUID); duplicates air once")
    parser.add_argument("--voice", help="provider voice name, e.g. en_US-joe-medium")
    parser.add_argument("--avatar", help="a prepared avatar's id (default: the stream's)")
    parser.add_argument("--interrupt", action="store_true", help="cut whatever is on air")
    parser.add_argument("--wait", action="store_true",
                        help=f"follow the {what} until it aired (exit 0), failed (1), was cut "
                        "(4) or the timeout passed (5), printing each step")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="how long --wait waits, in seconds (default 300)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc), EXIT_USAGE)
    setup_logging(settings.log_level, secrets_of(settings), settings.log_format)
    try:
        if args.command == "run":
            return _run(settings)
        if args.command == "serve-face":
            from ...avatar.face.server import serve

            asyncio.run(serve(settings, args.host, args.port))
            return EXIT_OK
        if args.command == "doctor":
            from .doctor import run_doctor

            return run_doctor(settings)
        if args.command == "prepare":
            from .commands import prepare_command

            return prepare_command(settings, args)
        if args.command in ("chat", "show"):
            from .commands import chat_command, show_command

            return (chat_command if args.command == "chat" else show_command)(settings, args)
        if args.command == "models":
            from .commands import download_command

            return download_command(settings, args)

        return asyncio.run(_publish(settings, args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(settings: Settings) -> int:
    from ...infra.malloc import return_big_blocks_to_the_os

    if settings.channels_file is not None:
        return _run_channels(settings)
    if settings.channel is not None:
        return fail("channel is set but channels_file is not: AVATARCAST_CHANNEL picks one "
                    "channel of AVATARCAST_CHANNELS_FILE", EXIT_USAGE)
    from ..daemon import Daemon

    if not settings.output.destinations():
        return fail("no output configured: set AVATARCAST_OUTPUT__RTMP_URLS (a JSON list of "
                    "rtmp:// URLs), AVATARCAST_OUTPUT__SRT_URLS, AVATARCAST_OUTPUT__HLS_DIR "
                    "and/or AVATARCAST_OUTPUT__RECORD_PATH", EXIT_USAGE)
    return_big_blocks_to_the_os()
    try:
        return asyncio.run(Daemon(settings).run())
    except UserError as exc:
        return fail(str(exc), EXIT_USAGE)
    except Unavailable as exc:
        return fail(str(exc), EXIT_UNAVAILABLE)
    except Exception:
        log.exception("the daemon failed")
        return EXIT_FAILED


def _run_channels(settings: Settings) -> int:
    from ...infra.malloc import return_big_blocks_to_the_os
    from ..channels import load_channels
    from ..worker import Worker

    try:
        channels = load_channels(settings)
    except UserError as exc:
        return fail(str(exc), EXIT_USAGE)
    for c in channels:  # each channel's own stream keys and API keys
        global_redactor().add(secrets_of(c))
    for c in channels:
        if not c.output.destinations():
            return fail(f"channel {c.channel!r} has no output: set its output.rtmp_urls (or "
                        "srt_urls, hls_dir, record_path) in the channels file", EXIT_USAGE)
    return_big_blocks_to_the_os()
    try:
        return asyncio.run(Worker(settings, channels).run())
    except Exception:
        log.exception("the worker failed")
        return EXIT_FAILED


async def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ...broker.publisher import PublishError, publish
    from ..channels import channel_queues

    if args.channel is not None:
        try:
            broker = channel_queues(settings.broker, args.channel)
        except ValueError as exc:
            return fail(str(exc), EXIT_USAGE)
        settings = settings.model_copy(update={"broker": broker})

    msg: SpeakMessage | AskMessage | ControlMessage
    try:
        if args.command == "say":
            msg = SpeakMessage(
                id=args.id or str(uuid.uuid4()), text=args.text, voice=args.voice,
                avatar=args.avatar, interrupt=args.interrupt,
            )
        elif args.command == "ask":
            msg = AskMessage(id=args.id or str(uuid.uuid4()), prompt=args.prompt,
                             system=args.system, intro=args.intro, voice=args.voice,
                             avatar=args.avatar,
                             interrupt=args.interrupt)
        else:
            msg = ControlMessage.model_validate({"command": args.command, **_changes(args),
                                                 **_scene_changes(args)})
    except ValidationError as exc:
        return fail(invalid_message(exc), EXIT_USAGE)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    wait = not isinstance(msg, ControlMessage) and args.wait
    if wait and args.timeout <= 0:
        return fail("--timeout must be more than 0 seconds", EXIT_USAGE)
    queue = settings.broker.control_queue if isinstance(msg, ControlMessage) else \
        settings.broker.speak_queue

    def sent(consumers: int) -> None:
        print(msg.command if isinstance(msg, ControlMessage) else msg.id, flush=True)
        if consumers == 0:
            print(f"avatarcast: nothing consumes {queue} (no daemon running?); the message "
                  "waits there until one starts", file=sys.stderr, flush=True)

    try:
        done = await publish(settings.broker, msg, follow_s=args.timeout if wait else None,
                             progress=_progress, on_sent=sent)
    except PublishError as exc:
        log.error("could not publish: %s", exc)
        return EXIT_UNAVAILABLE
    if not wait:
        return EXIT_OK
    return _waited(done.last, args.timeout)


def _changes(args: argparse.Namespace) -> dict[str, str | None]:
    """The fields a control command sets: given values, and None for each --reset."""
    changes: dict[str, str | None] = {f: None for f in args.reset}
    for field in SETTABLE:
        if (value := getattr(args, field)) is not None:
            if field in changes:
                raise ValueError(f"--{field} and --reset {field} contradict each other")
            changes[field] = value
    return changes


def _scene_changes(args: argparse.Namespace) -> dict[str, Any]:
    return {f: v for f in SCENE_FIELDS if (v := getattr(args, f, None)) is not None}


def _progress(event: dict[str, Any]) -> None:
    name = event.get("event")
    where = f"stream {event.get('stream_s', 0):.2f} s"
    detail = {
        "accepted": "accepted", "rendering": "rendering",
        "on_air": f"on air at {where}", "finished": f"finished at {where}: aired in full",
        "requeued": f"requeued: {event.get('reason')}",
    }.get(str(name), f"{name}: {event.get('reason', '')}")
    print(detail, flush=True)
    if event.get("answer"):
        print(f"answer: {event['answer']}", flush=True)


def _waited(last: dict[str, Any] | None, timeout: float) -> int:
    if last is None:
        return fail(f"not aired within {timeout:g} s (it may still air)", EXIT_TIMED_OUT)
    name = last["event"]
    if name in ("finished", "duplicate"):
        return EXIT_OK
    if name == "failed":
        return fail(f"failed: {last.get('reason')}", EXIT_FAILED)
    return fail(f"not aired in full: {name} ({last.get('reason')})", EXIT_NOT_AIRED)
