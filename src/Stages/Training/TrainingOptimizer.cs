using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Training;

/// <summary>
/// SGD (momentum, Nesterov, L2 weight decay), Adam (L2 weight decay) and AdamW (decoupled weight decay) with the
/// update rules of <c>torch.optim</c> (single-tensor path, dampening 0, no amsgrad). Written here rather than taken
/// from TorchSharp because TorchSharp 0.107's optimizers hand libtorch temporary Scalars (<c>mul_(beta1)</c>,
/// <c>add_(grad, alpha: 1 - beta1)</c>, …) that only the GC finalizer frees — see <see cref="Models.HeldScalars"/>.
/// Every Scalar here is disposed only after the op that reads it has returned.
/// State is saved as safetensors with the keys of PyTorch's optimizer state dict, flattened:
/// <c>state.{i}.momentum_buffer</c> (SGD), <c>state.{i}.exp_avg</c> and <c>state.{i}.exp_avg_sq</c> (Adam, AdamW), with
/// i the parameter's position in <c>module.parameters()</c>, plus the step count under <c>step</c>.
/// </summary>
public sealed class TrainingOptimizer : IDisposable
{
    private const string StepKey = "step";

    private readonly OptimizerParams _p;
    private readonly Parameter[] _parameters;
    private readonly Tensor?[] _first;  // momentum_buffer (SGD) or exp_avg (Adam, AdamW)
    private readonly Tensor?[] _second; // exp_avg_sq (Adam, AdamW)
    private readonly Scalar _one = 1.0.ToScalar();
    private readonly Scalar _momentum;
    private readonly Scalar _beta1;
    private readonly Scalar _oneMinusBeta1;
    private readonly Scalar _beta2;
    private readonly Scalar _oneMinusBeta2;
    private readonly Scalar _weightDecay;
    private readonly Scalar _eps;

    public TrainingOptimizer(OptimizerParams p, IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(p);
        _p = p;
        _parameters = parameters.ToArray();
        _first = new Tensor?[_parameters.Length];
        _second = new Tensor?[_parameters.Length];
        _momentum = p.Momentum.ToScalar();
        _beta1 = p.Beta1.ToScalar();
        _oneMinusBeta1 = (1 - p.Beta1).ToScalar();
        _beta2 = p.Beta2.ToScalar();
        _oneMinusBeta2 = (1 - p.Beta2).ToScalar();
        _weightDecay = p.WeightDecay.ToScalar();
        _eps = p.Eps.ToScalar();
    }

    /// <summary>The optimizer's name in checkpoints: sgd, adam or adamw.</summary>
    public string Kind => _p.Kind.ToString().ToLowerInvariant();

    /// <summary>Updates taken so far (Adam's bias correction uses it).</summary>
    public long Steps { get; private set; }

    public void ZeroGrad()
    {
        foreach (var parameter in _parameters)
        {
            using var grad = parameter.grad;
            grad?.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient, at <paramref name="learningRate"/>.</summary>
    public void Step(double learningRate)
    {
        Steps++;
        using var noGrad = no_grad();
        using var minusLr = (-learningRate).ToScalar();
        // Adam: p −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε); AdamW first decays p by (1 − lr·wd).
        using var minusStepSize = (-learningRate / (1 - Math.Pow(_p.Beta1, Steps))).ToScalar();
        using var sqrtBiasCorrection2 = Math.Sqrt(1 - Math.Pow(_p.Beta2, Steps)).ToScalar();
        using var decay = (1 - (learningRate * _p.WeightDecay)).ToScalar();
        for (var i = 0; i < _parameters.Length; i++)
        {
            using var scope = NewDisposeScope();
            var parameter = _parameters[i];
            var grad = parameter.grad;
            if (grad is null) continue;
            if (_p.Kind == OptimizerKind.Sgd)
                SgdStep(i, parameter, grad, minusLr);
            else
                AdamStep(i, parameter, grad, minusStepSize, sqrtBiasCorrection2, decay);
        }
    }

    private void SgdStep(int i, Parameter parameter, Tensor grad, Scalar minusLr)
    {
        var g = _p.WeightDecay != 0 ? grad.add(parameter, _weightDecay) : grad;
        if (_p.Momentum != 0)
        {
            if (_first[i] is not { } buffer)
                _first[i] = buffer = g.clone().DetachFromDisposeScope();
            else
                buffer.mul_(_momentum).add_(g, _one);
            g = _p.Nesterov ? g.add(buffer, _momentum) : buffer;
        }
        parameter.add_(g, minusLr);
    }

    private void AdamStep(int i, Parameter parameter, Tensor grad, Scalar minusStepSize, Scalar sqrtBiasCorrection2, Scalar decay)
    {
        var g = grad;
        if (_p.Kind == OptimizerKind.Adamw)
            parameter.mul_(decay);
        else if (_p.WeightDecay != 0)
            g = grad.add(parameter, _weightDecay);
        var m = _first[i] ??= zeros_like(parameter).DetachFromDisposeScope();
        var v = _second[i] ??= zeros_like(parameter).DetachFromDisposeScope();
        m.mul_(_beta1).add_(g, _oneMinusBeta1);
        v.mul_(_beta2).addcmul_(g, g, _oneMinusBeta2);
        var denominator = v.sqrt().div_(sqrtBiasCorrection2).add_(_eps, _one);
        parameter.addcdiv_(m, denominator, minusStepSize);
    }

    /// <summary>The state as safetensors (see the class summary for the keys).</summary>
    public async Task SaveAsync(Stream destination, CancellationToken ct)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [StepKey] = tensor(Steps) };
        for (var i = 0; i < _parameters.Length; i++)
        {
            if (_first[i] is { } first) tensors[FirstKey(i)] = first.cpu();
            if (_second[i] is { } second) tensors[$"state.{i}.exp_avg_sq"] = second.cpu();
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["optimizer"] = Kind };
        await Safetensors.WriteAsync(tensors, destination, metadata, ct);
    }

    /// <summary>
    /// Reads state saved by <see cref="SaveAsync"/> and checks every key, shape and dtype against the parameters; nothing
    /// changes until <see cref="Apply"/>, so a caller can check other files first and a misfit leaves the optimizer as it was.
    /// </summary>
    public OptimizerState Read(Stream source)
    {
        var entries = Safetensors.ReadHeader(source);
        var expected = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        for (var i = 0; i < _parameters.Length; i++)
        {
            expected[FirstKey(i)] = _parameters[i];
            if (_p.Kind != OptimizerKind.Sgd) expected[$"state.{i}.exp_avg_sq"] = _parameters[i];
        }
        foreach (var e in entries)
        {
            if (e.Name == StepKey)
            {
                if (e.Shape.Length != 0 || e.DType != ScalarType.Int64)
                    throw new InvalidDataException($"'{StepKey}' must be an int64 scalar; it is {e.DType} [{string.Join(", ", e.Shape)}].");
                continue;
            }
            if (!expected.TryGetValue(e.Name, out var parameter))
                throw new InvalidDataException($"'{e.Name}' is not state of this {Kind} optimizer over {_parameters.Length} parameters.");
            if (!e.Shape.SequenceEqual(parameter.shape) || e.DType != parameter.dtype)
                throw new InvalidDataException($"'{e.Name}' is {e.DType} [{string.Join(", ", e.Shape)}]; its parameter is {parameter.dtype} [{string.Join(", ", parameter.shape)}].");
        }
        if (entries.All(e => e.Name != StepKey)) throw new InvalidDataException($"The optimizer state has no '{StepKey}'.");

        return new OptimizerState(Safetensors.ReadData(source, entries));
    }

    /// <summary>Replaces the state with <paramref name="state"/> (from <see cref="Read"/>), which this takes over.</summary>
    public void Apply(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var tensors = state.Take();
        using (var step = tensors[StepKey]) Steps = step.ToInt64();
        for (var i = 0; i < _parameters.Length; i++)
        {
            Replace(_first, i, tensors.GetValueOrDefault(FirstKey(i)));
            Replace(_second, i, tensors.GetValueOrDefault($"state.{i}.exp_avg_sq"));
        }
    }

    private void Replace(Tensor?[] state, int i, Tensor? value)
    {
        state[i]?.Dispose();
        state[i] = value?.to(_parameters[i].device);
        if (value is not null && !ReferenceEquals(state[i], value)) value.Dispose();
    }

    private string FirstKey(int i) => _p.Kind == OptimizerKind.Sgd ? $"state.{i}.momentum_buffer" : $"state.{i}.exp_avg";

    public void Dispose()
    {
        foreach (var t in _first.Concat(_second)) t?.Dispose();
        foreach (var s in new[] { _one, _momentum, _beta1, _oneMinusBeta1, _beta2, _oneMinusBeta2, _weightDecay, _eps }) s.Dispose();
    }
}

/// <summary>Optimizer state read and checked by <see cref="TrainingOptimizer.Read"/>, not yet applied.</summary>
public sealed class OptimizerState(Dictionary<string, Tensor> tensors) : IDisposable
{
    private Dictionary<string, Tensor>? _tensors = tensors;

    internal Dictionary<string, Tensor> Take()
    {
        var t = _tensors ?? throw new ObjectDisposedException(nameof(OptimizerState));
        _tensors = null;
        return t;
    }

    public void Dispose()
    {
        foreach (var t in _tensors?.Values ?? Enumerable.Empty<Tensor>()) t.Dispose();
        _tensors = null;
    }
}
