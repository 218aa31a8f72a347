"""Serve tsneviz runs: explorer pages and a REST API (FastAPI + uvicorn).

Binds 127.0.0.1 by default. Any other address is reachable from the
network, so it needs ``--token``: every request must then carry
``Authorization: Bearer <token>`` (or open a page with ``?token=<token>``).

Examples::

    python tools/serve.py work_dirs --port 8000
    # then open http://127.0.0.1:8000/ ; the API spec: /docs, /openapi.json
    python tools/serve.py work_dirs --host 0.0.0.0 --token "$(openssl rand \\
        -hex 16)" --configs-dir configs --checkpoints-dir checkpoints
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from tsneviz.cli import quiet_library_warnings, run  # noqa: E402

quiet_library_warnings()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Serve the explorer pages of tsneviz runs and a REST API '
        'over them (points, neighbours, clusters, images, selections, '
        'splits, new runs).')
    parser.add_argument('root', metavar='RUN_DIR_OR_WORK_DIR',
                        help='a run directory, or a work dir holding runs '
                        '(searched 3 levels deep); new runs go under it')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to bind. Defaults to 127.0.0.1; any '
                        'non-loopback address needs --token')
    parser.add_argument('--port', type=int, default=8000,
                        help='port. Defaults to 8000')
    parser.add_argument('--token', default=os.environ.get('TSNEVIZ_TOKEN'),
                        help='token every request must carry (Authorization: '
                        'Bearer, or ?token= on pages). Defaults to '
                        '$TSNEVIZ_TOKEN')
    parser.add_argument('--configs-dir', default='configs',
                        help='the only folder POST /api/jobs may take '
                        'configs from, by relative name. Defaults to configs')
    parser.add_argument('--checkpoints-dir', default=None,
                        help='the only folder POST /api/jobs may take '
                        'checkpoints from. Defaults to none (jobs run '
                        'without a checkpoint)')
    parser.add_argument('--max-body-bytes', type=int, default=None,
                        help='larger request bodies get 413. Defaults to '
                        '1 MiB')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.errors import UserError
    from tsneviz.server.security import is_loopback

    if not is_loopback(args.host) and not args.token:
        raise UserError(f'--host {args.host} is reachable from other '
                        'machines: pass --token (or set TSNEVIZ_TOKEN), or '
                        'bind 127.0.0.1')
    if not osp.isdir(args.root):
        raise UserError(f'not a directory: {args.root}; pass a run directory '
                        'or a work dir holding runs')
    configs_dir = args.configs_dir
    if configs_dir is not None and not osp.isdir(configs_dir):
        print(f'note: no configs directory {configs_dir}: jobs are disabled',
              file=sys.stderr)
        configs_dir = None
    if args.checkpoints_dir is not None and \
            not osp.isdir(args.checkpoints_dir):
        raise UserError(f'--checkpoints-dir {args.checkpoints_dir} is not a '
                        'directory')

    import uvicorn

    from tsneviz.server.app import MAX_BODY_BYTES, create_app
    app = create_app(args.root, configs_dir=configs_dir,
                     checkpoints_dir=args.checkpoints_dir, token=args.token,
                     max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES)
    uvicorn.run(app, host=args.host, port=args.port,
                # the token may be in a page's query string: no access log
                access_log=not args.token, log_level='info')


if __name__ == '__main__':
    run(main)
