function fdassim_save(path, s)
%FDASSIM_SAVE  Save the fields of struct S to PATH atomically (MAT level 5).
%
%   The struct is written under a temporary name in the same directory, then renamed
%   to PATH, so a reader never sees half a file.
  [folder, base] = fileparts(path);
  tmp = fullfile(folder, sprintf('.%s.%d.tmp.mat', base, fdassim_getpid()));
  if exist('OCTAVE_VERSION', 'builtin') > 0
    save('-v7', tmp, '-struct', 's');
    [status, msg] = rename(tmp, path);
    if status ~= 0
      error('issm_bridge:save', 'cannot rename %s to %s: %s', tmp, path, msg);
    end
  else
    save(tmp, '-struct', 's', '-v7');
    [ok, msg] = movefile(tmp, path, 'f');
    if ~ok
      error('issm_bridge:save', 'cannot rename %s to %s: %s', tmp, path, msg);
    end
  end
end
