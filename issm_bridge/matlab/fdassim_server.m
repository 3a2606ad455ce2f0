function fdassim_server(directory, name, owner_pid)
%FDASSIM_SERVER  The command loop of an issm_bridge server (MATLAB and GNU Octave).
%
%   fdassim_server(directory, name, owner_pid) waits for requests in
%   DIRECTORY and answers each one, until asked to stop or until its owner is gone.
%
%   Protocol (every file is MAT level 5, written under a temporary name and renamed):
%     request.mat  written by Python: id (char), code (char), nout (0 or 1)
%     reply.mat    written here:      id, ok (logical), message, identifier, stack,
%                                     elapsed (seconds inside the command), result
%     ready.mat    written once at start: pid, engine, version, name
%   The code is evaluated inside try/catch: an error, including a syntax error, is
%   answered with ok = false, the message and the stack; the loop goes on. The code
%   '__stop__' answers ok and ends the loop.
%
%   OWNER_PID > 0 ties the server to a process: a watcher shell started here, in the
%   server's process group, checks every second that the owner lives and, once it is
%   gone, kills the whole group (the server, whatever command it is running, and what it
%   started), so a killed Python leaves nothing behind. OWNER_PID = 0: a detached server.

  is_octave = exist('OCTAVE_VERSION', 'builtin') > 0;
  if is_octave
    more off;
    page_screen_output(false);
    page_output_immediately(true);
    % stopped by a signal, a server leaves no octave-workspace file behind
    crash_dumps_octave_core(false);
    sigterm_dumps_octave_core(false);
    sighup_dumps_octave_core(false);
  end
  request = fullfile(directory, 'request.mat');
  reply_path = fullfile(directory, 'reply.mat');
  ready.pid = fdassim_getpid();
  ready.name = name;
  if is_octave
    ready.engine = 'octave';
  else
    ready.engine = 'matlab';
  end
  ready.version = version();
  if owner_pid > 0
    system(sprintf(['sh -c ''while kill -0 %d 2>/dev/null; do sleep 1; done; kill -KILL 0'' ' ...
                    '</dev/null >/dev/null 2>&1 &'], owner_pid));
  end
  fdassim_save(fullfile(directory, 'ready.mat'), ready);
  fprintf('issm_bridge server %s ready (pid %d, %s %s)\n', name, ready.pid, ready.engine, ready.version);
  flush_output(is_octave);

  idle = 0.001;
  while true
    if exist(request, 'file') == 2
      [reply, stop] = answer(request);
      fdassim_save(reply_path, reply);
      flush_output(is_octave);
      if stop
        break;
      end
      idle = 0.001;
    else
      pause(idle);
      idle = min(2 * idle, 0.02);
    end
  end
end

function [reply, stop] = answer(request)
  reply = struct('id', '', 'ok', true, 'message', '', 'identifier', '', 'stack', '', ...
                 'elapsed', 0, 'result', []);
  stop = false;
  try
    s = load(request);
    delete(request);
  catch err
    % a request that cannot be read is answered as an error; its id is unknown
    reply.ok = false;
    reply.message = ['cannot read the request: ' err.message];
    delete(request);
    return;
  end
  reply.id = s.id;
  t = tic;
  if strcmp(s.code, '__stop__')
    stop = true;
  else
    try
      reply.result = evaluate(s.code, s.nout);
    catch err
      reply.ok = false;
      reply.message = err.message;
      reply.identifier = err.identifier;
      reply.stack = format_stack(err);
    end
  end
  reply.elapsed = toc(t);
end

function result = evaluate(fdassim_code__, fdassim_nout__)
  % a workspace of its own: the command sees none of the loop's variables
  result = [];
  if fdassim_nout__ > 0
    result = eval(fdassim_code__);
  else
    eval([fdassim_code__ ';']);
  end
end

function text = format_stack(err)
  text = '';
  for k = 1:numel(err.stack)
    f = err.stack(k);
    if strncmp(f.name, 'fdassim_server', 14)
      continue;  % the loop's own frames
    end
    text = [text sprintf('%s at %s:%d\n', f.name, f.file, f.line)]; %#ok<AGROW>
  end
end

function flush_output(is_octave)
  if is_octave
    fflush(stdout);
    fflush(stderr);
  end
end
