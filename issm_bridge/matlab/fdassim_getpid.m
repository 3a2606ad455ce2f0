function pid = fdassim_getpid()
%FDASSIM_GETPID  The process id of this MATLAB or GNU Octave.
  if exist('OCTAVE_VERSION', 'builtin') > 0
    pid = getpid();
  else
    pid = feature('getpid');
  end
end
