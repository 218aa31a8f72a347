"""Serve tsneviz runs: explorer pages and a REST API (FastAPI + uvicorn).

Binds 127.0.0.1 by default. Any other address is reachable from the
network, so it needs ``--token`` (a short or repetitive one gets a
warning): every request must then carry ``Authorization: Bearer <token>``
(or open a page with ``?token=<token>``). Jobs (new runs over HTTP) are
off unless ``--jobs`` is given; they then read configs, checkpoints and
data only from ``--configs-dir``, ``--checkpoints-dir`` and ``--data-dir``.

Examples::

    python tools/serve.py work_dirs --port 8000
    # then open http://127.0.0.1:8000/ ; the API spec: /docs, /openapi.json
    python tools/serve.py work_dirs --host 0.0.0.0 --token "$(openssl rand \\
        -hex 16)" --jobs --configs-dir configs --data-dir data \\
        --checkpoints-dir checkpoints
"""
import argparse
import os
import os.path as osp
import sys

from tsneviz.cli import quiet_library_warnings, run

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
    parser.add_argument('--jobs', action='store_true',
                        help='accept POST /api/jobs (new extraction + t-SNE '
                        'runs); needs --data-dir. Off by default')
    parser.add_argument('--configs-dir', default='configs',
                        help='with --jobs: the only folder jobs may take '
                        'configs from, by relative name. Defaults to configs')
    parser.add_argument('--data-dir', action='append', default=[],
                        help='a folder datasets may be in: jobs read only '
                        'from inside one (every resolved data_root / '
                        'data_prefix / ann_file), and run images are served '
                        'only from inside one; repeatable. Without it, '
                        'images are served from each run\'s own dataset '
                        'folder, unless that folder holds the runs')
    parser.add_argument('--checkpoints-dir', default=None,
                        help='the only folder POST /api/jobs may take '
                        'checkpoints from. Defaults to none (jobs run '
                        'without a checkpoint)')
    parser.add_argument('--max-body-bytes', type=int, default=None,
                        help='larger request bodies get 413. Defaults to '
                        '1 MiB')
    parser.add_argument('--max-jobs', type=int, default=1,
                        help='jobs run at a time. Defaults to 1')
    parser.add_argument('--max-queue', type=int, default=8,
                        help='jobs that may wait; more get 429. Defaults '
                        'to 8')
    parser.add_argument('--max-selections', type=int, default=1000,
                        help='selections a run may hold; more get 409. '
                        'Defaults to 1000')
    parser.add_argument('--body-timeout', type=float, default=10.0,
                        help='seconds a request body may take to arrive; '
                        'then 408. Defaults to 10')
    parser.add_argument('--keep-alive-timeout', type=float, default=5.0,
                        help='seconds an idle connection is kept open. '
                        'Defaults to 5')
    parser.add_argument('--header-timeout', type=float, default=10.0,
                        help='seconds a connection may take to send a '
                        'complete request line and headers (from when it '
                        'opened or got its last answer); then it is closed. '
                        'Defaults to 10')
    parser.add_argument('--max-connections', type=int, default=256,
                        help='connections served at once; more get 503. '
                        'Connections waiting for a request make room for '
                        'new ones. Defaults to 256')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tsneviz.errors import UserError
    from tsneviz.server.security import is_loopback, weak_token

    if not is_loopback(args.host):
        if not args.token:
            raise UserError(f'--host {args.host} is reachable from other '
                            'machines: pass --token (or set TSNEVIZ_TOKEN), '
                            'or bind 127.0.0.1')
        weakness = weak_token(args.token)
        if weakness:
            print(f'warning: --token is easy to guess on --host {args.host}: '
                  f'{weakness}; use e.g. "$(openssl rand -hex 16)"',
                  file=sys.stderr)
    if not osp.isdir(args.root):
        raise UserError(f'not a directory: {args.root}; pass a run directory '
                        'or a work dir holding runs')
    for value, flag in ((args.max_jobs, '--max-jobs'),
                        (args.max_queue, '--max-queue'),
                        (args.max_selections, '--max-selections'),
                        (args.max_connections, '--max-connections')):
        if value < 1:
            raise UserError(f'{flag} must be at least 1')
    if min(args.body_timeout, args.keep_alive_timeout,
           args.header_timeout) <= 0:
        raise UserError('--body-timeout, --keep-alive-timeout and '
                        '--header-timeout must be positive')
    configs_dir = None
    if args.jobs:
        configs_dir = args.configs_dir
        if not osp.isdir(configs_dir):
            raise UserError(f'--configs-dir {configs_dir} is not a '
                            'directory; --jobs takes configs from it')
        if not args.data_dir:
            raise UserError('--jobs needs --data-dir: the folder(s) jobs '
                            'may read datasets from')
    for folder, flag in [(args.checkpoints_dir, '--checkpoints-dir')] + \
            [(d, '--data-dir') for d in args.data_dir]:
        if folder is not None and not osp.isdir(folder):
            raise UserError(f'{flag} {folder} is not a directory')

    import uvicorn

    from tsneviz.server.app import MAX_BODY_BYTES, create_app
    from tsneviz.server.protocol import header_deadline
    app = create_app(args.root, configs_dir=configs_dir,
                     checkpoints_dir=args.checkpoints_dir, token=args.token,
                     max_body_bytes=args.max_body_bytes or MAX_BODY_BYTES,
                     data_dirs=[osp.abspath(d) for d in args.data_dir],
                     max_jobs=args.max_jobs, max_queue=args.max_queue,
                     body_timeout=args.body_timeout,
                     max_selections=args.max_selections)
    uvicorn.run(app, host=args.host, port=args.port,
                # uvicorn's h11 protocol, plus a deadline on request heads
                # and idle connections making room for new ones (idle or
                # trickling sockets would otherwise hold every slot)
                http=header_deadline(args.header_timeout),
                # an idle connection is closed after this; a slow body is
                # cut off by the app (--body-timeout)
                timeout_keep_alive=args.keep_alive_timeout,
                limit_concurrency=args.max_connections,
                # the token may be in a page's query string: no access log
                access_log=not args.token, log_level='info')


if __name__ == '__main__':
    run(main)
