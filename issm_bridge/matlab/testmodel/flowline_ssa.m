function [u, A, eta] = flowline_ssa(md, H, C, u)
%FLOWLINE_SSA  The flowline shallow-shelf velocity of thickness H and friction C.
%
%   Solves, by Picard iterations on the viscosity from the starting guess u,
%
%     d/dx( 2 B H |u_x|^(1/n - 1) u_x ) - C^2 u = rho g H ds/dx,   s = bed + H,
%
%   with u = md.stressbalance.spcvx at x = 0 and no longitudinal stress at the
%   downstream end, on the vertices of md.mesh.x (finite differences, stresses at the
%   midpoints). Returns u (m/yr), and the matrix A and midpoint viscosity eta of the last
%   linear solve (A u = rho g H ds/dx) for the inversion.
  x = md.mesh.x(:);
  n = numel(x);
  dx = diff(x);
  B = md.materials.rheology_B;
  p = 1 / md.materials.rheology_n - 1;
  s = md.geometry.bed(:) + H(:);
  tau = md.materials.rho_ice * md.constants.g * H(:) .* gradient_of(s, x);
  rhs = tau;
  rhs(1) = md.stressbalance.spcvx(1);
  Hm = 0.5 * (H(1:end - 1) + H(2:end));
  u = u(:);
  for it = 1:md.stressbalance.maxiter
    ux = diff(u) ./ dx;
    eta = 2 * B * Hm .* (ux .^ 2 + 1e-10) .^ (p / 2);
    A = assemble(eta, C(:), dx, n);
    unew = A \ rhs;
    change = norm(unew - u) / max(norm(unew), eps);
    u = unew;
    if change < md.stressbalance.restol
      break;
    end
  end
end

function A = assemble(eta, C, dx, n)
  % row i = 2..n-1: (k_i (u_{i+1} - u_i) - k_{i-1} (u_i - u_{i-1})) / h_i - C_i^2 u_i, with the
  % midpoint conductance k_j = eta_{j+1/2} / dx_j and the cell width h_i; row n: the same
  % with no stress beyond the end, over the half cell h_n = dx_{n-1} / 2; row 1: u_1.
  k = eta ./ dx;
  h = [0.5 * (dx(1:end - 1) + dx(2:end)); 0.5 * dx(end)];  % h_i for i = 2..n
  i = (2:n)';
  below = k(i - 1) ./ h;                                     % A(i, i-1)
  above = [k(2:end) ./ h(1:end - 1); 0];                     % A(i, i+1), none on row n
  centre = -(below + above) - C(i) .^ 2;
  inner = (2:n - 1)';
  A = sparse([1; i; i; inner], [1; i - 1; i; inner + 1], ...
             [1; below; centre; above(1:end - 1)], n, n);
end

function g = gradient_of(s, x)
  n = numel(s);
  g = zeros(n, 1);
  g(2:n - 1) = (s(3:n) - s(1:n - 2)) ./ (x(3:n) - x(1:n - 2));
  g(1) = (s(2) - s(1)) / (x(2) - x(1));
  g(n) = (s(n) - s(n - 1)) / (x(n) - x(n - 1));
end
