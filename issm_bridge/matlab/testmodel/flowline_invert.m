function [C, J] = flowline_invert(md)
%FLOWLINE_INVERT  Invert the test model's friction coefficient from md.inversion.vx_obs.
%
%   Minimises, over C within [md.inversion.min_parameters, max_parameters], ISSM's cost
%   functions on the vertices (trapezoidal weights w):
%
%     101  SurfaceAbsVelMisfit        sum w c/2 (u - u_obs)^2
%     102  SurfaceRelVelMisfit        sum w c/2 (vbar / u_obs)^2 (u - u_obs)^2, vbar = 1000 m/yr
%     501  DragCoefficientAbsGradient sum dx c/2 (dC/dx)^2            (Tikhonov)
%
%   with c the columns of md.inversion.cost_functions_coefficients, by projected
%   Levenberg-Marquardt iterations (md.inversion.maxiter of them) whose Jacobian holds the
%   viscosity fixed, as ISSM's incomplete adjoint does. Returns C and the cost J before
%   each iteration and at the end.
  x = md.mesh.x(:);
  n = numel(x);
  dx = diff(x);
  w = [dx(1) / 2; 0.5 * (dx(1:end - 1) + dx(2:end)); dx(end) / 2];
  uobs = md.inversion.vx_obs(:);
  coeffs = md.inversion.cost_functions_coefficients;
  W = zeros(n, 1);       % weight of (u - u_obs)^2 / 2 at each vertex
  alpha = zeros(n - 1, 1);
  for k = 1:numel(md.inversion.cost_functions)
    c = coeffs(:, k);
    switch md.inversion.cost_functions(k)
      case 101
        W = W + w .* c;
      case 102
        scale = (1000 ./ (uobs + eps)) .^ 2;
        scale(uobs == 0) = 0;
        W = W + w .* c .* scale;
      case 501
        alpha = alpha + dx .* 0.5 .* (c(1:end - 1) + c(2:end));
      otherwise
        error('flowline:cost', 'flowline_invert: cost function %d is not available (101, 102, 501)', ...
              md.inversion.cost_functions(k));
    end
  end
  j = (1:n - 1)';
  D = sparse([j; j], [j; j + 1], [-1 ./ dx; 1 ./ dx], n - 1, n);  % dC/dx at the midpoints
  R = D' * spdiags(alpha, 0, n - 1, n - 1) * D;          % Tikhonov Hessian
  lo = md.inversion.min_parameters(:);
  hi = md.inversion.max_parameters(:);
  H = md.geometry.thickness(:);
  C = min(max(md.friction.coefficient(:), lo), hi);
  u = md.initialization.vx(:);
  [u, cost] = evaluate(md, H, C, u, uobs, W, R);
  J = cost;
  lambda = 1e-3;
  for it = 1:md.inversion.maxiter
    [~, A] = flowline_ssa(md, H, C, u);
    % du/dC_j = A^{-1} e_j 2 C_j u_j (viscosity held fixed); the inflow row has no friction
    G = A \ spdiags(2 * C .* u, 0, n, n);
    G(:, 1) = 0;
    g = G' * (W .* (u - uobs)) + R * C;
    N = G' * spdiags(W, 0, n, n) * G + R;
    accepted = false;
    for attempt = 1:8
      step = -(N + lambda * spdiags(diag(N) + eps, 0, n, n)) \ g;
      Cnew = min(max(C + step, lo), hi);
      [unew, costnew] = evaluate(md, H, Cnew, u, uobs, W, R);
      if costnew < cost
        accepted = true;
        break;
      end
      lambda = 10 * lambda;
    end
    if ~accepted
      break;
    end
    C = Cnew;
    u = unew;
    cost = costnew;
    lambda = max(lambda / 10, 1e-8);
    J(end + 1) = cost; %#ok<AGROW>
  end
end

function [u, cost] = evaluate(md, H, C, u, uobs, W, R)
  u = flowline_ssa(md, H, C, u);
  cost = 0.5 * sum(W .* (u - uobs) .^ 2) + 0.5 * C' * R * C;
end
