function fdassim_issm_path()
%FDASSIM_ISSM_PATH  Put ISSM (found by the environment variable ISSM_DIR) on the path.
%
%   A source build has src/m/dev/devpath.m (ISSM's own path script); a binary install
%   has bin/ and lib/.
  root = getenv('ISSM_DIR');
  if isempty(root)
    error('issm_bridge:issm', 'ISSM_DIR is not set: export ISSM_DIR=<your ISSM install>');
  end
  dev = fullfile(root, 'src', 'm', 'dev');
  if exist(fullfile(dev, 'devpath.m'), 'file') == 2
    addpath(dev);
    devpath;
  else
    addpath(fullfile(root, 'bin'), fullfile(root, 'lib'));
  end
  if exist('solve', 'file') ~= 2
    error('issm_bridge:issm', 'ISSM''s solve.m was not found under ISSM_DIR=%s', root);
  end
end
