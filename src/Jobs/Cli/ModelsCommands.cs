using System.CommandLine;
using Pipeline.Stages.Models;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline models list|show`: the model library's presets, counted on the built models.</summary>
public static class ModelsCommands
{
    public static Command Build()
    {
        var inputSize = new Option<int>("--input-size") { Description = "Input image size in pixels", DefaultValueFactory = _ => 224 };
        var classes = new Option<int>("--classes") { Description = "Number of classes", DefaultValueFactory = _ => 1000 };
        var width = new Option<double>("--width") { Description = "Channel width multiplier", DefaultValueFactory = _ => 1.0 };

        var list = new Command("list", "Every preset with its parameters, multiply-adds per image (one full unroll), default and minimal T")
            { inputSize, classes, width };
        list.SetAction(p =>
        {
            TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
            Console.WriteLine($"input {p.GetValue(inputSize)} px, {p.GetValue(classes)} classes, width {p.GetValue(width)}");
            Console.WriteLine($"{"preset",-26} {"parameters",12} {"GMACs/image",12} {"T",4} {"min T",6}");
            foreach (var name in ModelPresets.Names)
            {
                using var model = ModelFactory.Create(name, p.GetValue(inputSize), p.GetValue(classes), p.GetValue(width));
                var macs = ModelStats.MultiplyAdds(model, model.DefaultSteps);
                Console.WriteLine($"{name,-26} {ModelStats.Parameters(model.Module),12:N0} {macs / 1e9,12:F2} {model.DefaultSteps,4} {model.MinimalSteps,6}");
            }
            return CliOutput.Ok;
        });

        var name = new Argument<string>("preset") { Description = "Model preset (see 'pipeline models list')" };
        var show = new Command("show", "A preset's layer table: shapes, cells, feedback edges") { name, inputSize, classes, width };
        show.SetAction(p =>
        {
            using var model = ModelFactory.Create(p.GetValue(name)!, p.GetValue(inputSize), p.GetValue(classes), p.GetValue(width));
            var spec = model.Spec;
            Console.WriteLine($"{spec.Name}: {spec.Description}");
            Console.WriteLine($"parameters {ModelStats.Parameters(model.Module):N0}; T {model.DefaultSteps} (image off at {spec.Time.ImageOff?.ToString() ?? "never"}), minimal T {model.MinimalSteps}; readout {spec.Readout.Kind}");
            if (model is ConvRnnModel convrnn) PrintLayers(convrnn);
            else
            {
                foreach (var layer in model.LayerNames) Console.WriteLine($"  {layer}");
            }
            return CliOutput.Ok;
        });
        return new Command("models", "The ConvRNN model library") { list, show };
    }

    private static void PrintLayers(ConvRnnModel model)
    {
        var spec = model.Spec;
        Console.WriteLine($"{"layer",-14} {"kind",-6} {"in",16} {"out",16} {"cell",-18} {"parameters",12}  feedback from");
        long size = spec.InputSize, channels = spec.InChannels;
        for (var i = 0; i < model.Layers.Count; i++)
        {
            var layer = model.Layers[i];
            var l = spec.Layers[i];
            var outSize = layer.OutputSize(size);
            var feedback = string.Join(", ", spec.ActiveFeedback.Where(f => f.To == l.Name).Select(f => f.From));
            Console.WriteLine($"{l.Name,-14} {l.Kind.ToString().ToLowerInvariant(),-6} {$"{channels}×{size}×{size}",16} {$"{layer.OutChannels}×{outSize}×{outSize}",16} {layer.CellType.ToString().ToLowerInvariant(),-18} {ModelStats.Parameters(layer),12:N0}  {feedback}");
            (size, channels) = (outSize, layer.OutChannels);
        }
        Console.WriteLine($"{"decoder",-14} {spec.Decoder.Kind.ToString().ToLowerInvariant(),-6} {$"{channels}×{size}×{size}",16} {spec.Classes,16}");
    }
}
