using System.CommandLine;
using Pipeline.Stages.NeuralFit;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline neural synth`: neural data with known ground truth, for testing the neural-fit stage.</summary>
public static class NeuralCommands
{
    public static Command Build()
    {
        var defaults = new VirtualMonkeyOptions();
        var output = new Option<string>("--out") { Description = "Output folder (new or empty): assembly.nc, images/, ground_truth.json", Required = true };
        var preset = new Option<string>("--preset") { Description = "Reference model preset (see 'pipeline models list')", DefaultValueFactory = _ => defaults.Preset };
        var width = new Option<double>("--width") { Description = "Channel width multiplier of the reference model", DefaultValueFactory = _ => defaults.Width };
        var stimuli = new Option<int>("--stimuli") { Description = "Synthetic stimuli to render (ignored with --images)", DefaultValueFactory = _ => defaults.Stimuli };
        var repetitions = new Option<int>("--repetitions") { Description = "Presentations of each stimulus (at least 2)", DefaultValueFactory = _ => defaults.Repetitions };
        var noise = new Option<double>("--noise") { Description = "Trial noise σ, in units of a site's signal standard deviation", DefaultValueFactory = _ => defaults.Noise };
        var seed = new Option<long>("--seed") { Description = "Seed of the model weights, images, site read-outs and noise", DefaultValueFactory = _ => defaults.Seed };
        var imageSize = new Option<int>("--image-size") { Description = "Image size in pixels", DefaultValueFactory = _ => defaults.ImageSize };
        var areas = new Option<string>("--areas") { Description = "Areas as REGION=LAYER[@LATENCY_STEPS], comma-separated (regions V4, IT, pIT, cIT, aIT)", DefaultValueFactory = _ => AreaSpec.FormatList(defaults.Areas) };
        var sites = new Option<int>("--sites") { Description = "Sites per area", DefaultValueFactory = _ => AreaSpec.DefaultSites };
        var features = new Option<int>("--features-per-site") { Description = "k: random features each site sums", DefaultValueFactory = _ => defaults.FeaturesPerSite };
        var projection = new Option<int?>("--projection") { Description = "Reduce each layer by a seeded random projection to this many dims (default: spatial mean per channel)" };
        var images = new Option<string?>("--images") { Description = "Use these images ({stimulus_id}.png|jpg, optional objects.csv) instead of rendering" };
        var threads = new Option<int>("--threads") { Description = "Torch CPU threads", DefaultValueFactory = _ => 2 };

        var synth = new Command("synth", "Synthesise a virtual-monkey dataset from a reference model (Brain-Score-style NetCDF + images + ground truth)")
            { output, preset, width, stimuli, repetitions, noise, seed, imageSize, areas, sites, features, projection, images, threads };
        synth.SetAction(p =>
        {
            IReadOnlyList<AreaSpec> parsedAreas;
            try
            {
                parsedAreas = AreaSpec.ParseList(p.GetValue(areas)!, p.GetValue(sites));
            }
            catch (FormatException e)
            {
                return CliOutput.Error($"--areas: {e.Message}");
            }
            var options = new VirtualMonkeyOptions
            {
                Preset = p.GetValue(preset)!,
                Width = p.GetValue(width),
                Stimuli = p.GetValue(stimuli),
                Repetitions = p.GetValue(repetitions),
                Noise = p.GetValue(noise),
                Seed = p.GetValue(seed),
                ImageSize = p.GetValue(imageSize),
                Areas = parsedAreas,
                FeaturesPerSite = p.GetValue(features),
                ProjectionDims = p.GetValue(projection),
                ImagesFolder = p.GetValue(images),
            };
            var errors = options.Validate().ToList();
            if (p.GetValue(threads) < 1) errors.Add(new("threads", "must be at least 1"));
            var folder = p.GetValue(output)!;
            if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any()) errors.Add(new("out", $"{folder} is not empty; choose a new folder"));
            if (options.ImagesFolder is { } dir && !Directory.Exists(dir)) errors.Add(new("images", $"{dir} is not a folder"));
            if (errors.Count > 0) return CliOutput.Error("Invalid options:\n  " + string.Join("\n  ", errors.Select(e => $"{(e.Field.Contains('[') ? e.Field : "--" + e.Field.Replace('_', '-'))}: {e.Message}")));

            TorchSharp.torch.set_num_threads(p.GetValue(threads));
            VirtualMonkeyData data;
            try
            {
                data = VirtualMonkey.Synthesize(options);
            }
            catch (Exception e) when (e is ArgumentException or NeuralDataException)
            {
                return CliOutput.Error(e.Message);
            }
            var written = VirtualMonkeyWriter.Write(data, folder);
            var a = data.Assembly;
            Console.WriteLine($"wrote {written[0]}: {a.Presentations.Count} presentations ({a.StimulusIds.Count} stimuli × {options.Repetitions}) × {a.Neuroids.Count} sites × {a.TimeBins.Count} bins of {VirtualMonkey.StepMs} ms");
            Console.WriteLine($"wrote {written[1]}: {data.Stimuli.Count} images");
            Console.WriteLine($"wrote {written[2]}:");
            foreach (var t in data.GroundTruth.Areas)
            {
                Console.WriteLine($"  {t.Region,-4} <- {t.Layer} (latency {t.LatencySteps} steps, first response {t.FirstResponseBin * VirtualMonkey.StepMs} ms), {t.Sites} sites, noise σ {t.NoiseSigma}, expected ceiling {t.ExpectedCeiling:F3}");
            }
            return CliOutput.Ok;
        });
        return new Command("neural", "Neural data for the neural-fit stage") { synth };
    }
}
