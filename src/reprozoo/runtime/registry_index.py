"""What the method packages register, written down so that ``reprozoo list``, ``--help`` and an
unknown name answer without importing any method package (or torch). Generated: regenerate with
``python -m reprozoo.runtime.registry_index`` after adding or renaming an experiment, benchmark,
model or command; ``tests/test_cli_index.py`` fails while it is out of date.
"""

# fmt: off
PACKAGES = ['activeasr', 'eclips', 'genas', 'gmp', 'nara', 'pflayer', 'rainbow', 'rexnet', 'sinet', 'tvqvae']

EXPERIMENTS = {'active-asr': {'module': 'reprozoo.activeasr.experiment',
                'package': 'activeasr',
                'paper': 'Bang, Kim, Yoo, Ha, Efficient Active Learning for Automatic Speech Recognition via '
                         'Augmented Consistency Regularization (arXiv 2006.11021, 2020)',
                'claim': 'Active learning with augmented consistency regularisation on the unlabelled pool '
                         'reaches a lower CER than supervised training on randomly or actively selected '
                         'utterances at the same labelling budget',
                'presets': ['smoke', 'quick', 'full', 'paper']},
 'eclips-fas': {'module': 'reprozoo.eclips.experiment',
                'package': 'eclips',
                'paper': 'Kim et al., Advancing Cross-Domain Generalizability in Face Anti-Spoofing: '
                         'Insights, Design, and Metrics (CVPR Workshops 2024)',
                'claim': 'An ensemble of base learners with learnable decision fusion and MC dropout '
                         '(ECLIPS) makes video-wise FAS predictions more stable (lower Variance) than the '
                         'strongest simple alternative without raising HTER on an unseen domain, while '
                         'scaling a single backbone does not',
                'presets': ['smoke', 'quick', 'pilot', 'full', 'paper']},
 'genas-correlation': {'module': 'reprozoo.genas.experiment',
                       'package': 'genas',
                       'paper': 'Jeong et al., GeNAS: Neural Architecture Search with Better Generalization '
                                '(IJCAI 2023)',
                       'claim': 'Ranking sub-networks of a one-shot supernet by GeNAS flatness correlates '
                                'better with stand-alone test and shifted-test accuracy than ranking by the '
                                "stronger of supernet validation accuracy (the paper's baseline) and "
                                "validation loss (the official score's loss term)",
                       'presets': ['smoke', 'quick', 'full', 'paper']},
 'genas-search': {'module': 'reprozoo.genas.experiment',
                  'package': 'genas',
                  'paper': 'Jeong et al., GeNAS: Neural Architecture Search with Better Generalization '
                           '(IJCAI 2023)',
                  'claim': 'Evolutionary search with GeNAS flatness finds cells that generalise better (test '
                           'and shifted test) than search with the stronger of supernet validation accuracy '
                           'and validation loss',
                  'presets': ['smoke', 'quick', 'full', 'paper']},
 'gmp-grounding': {'module': 'reprozoo.gmp.experiment',
                   'package': 'gmp',
                   'paper': 'Kim, Ko, Kim, Jeon, Kim: Gaussian Mixture Proposals with Pull-Push Learning '
                            'Scheme to Capture Diverse Events for Weakly Supervised Temporal Video '
                            'Grounding, AAAI 2024 (arXiv 2312.16388)',
                   'claim': 'Gaussian-mixture proposals trained with pull-push learning ground queries whose '
                            'moment is not one Gaussian-shaped block (two-part events) better than '
                            'single-Gaussian proposals (CPL), and are no worse on single-block events',
                   'presets': ['smoke', 'quick', 'full', 'paper']},
 'nara': {'module': 'reprozoo.nara.experiment',
          'package': 'nara',
          'paper': 'Yoo, Chun, Yun, Ha, Yoo: Neural Approximation of an Auto-Regressive Process through '
                   'Confidence Guided Sampling (NARA), arXiv 1910.06705, 2019',
          'claim': 'At equal sample quality (NLL under the mother within 1%, MMD and autocorrelation within '
                   "the sequential samples' spread), NARA needs fewer AR calls and less CPU time per batch "
                   'than the best training-free parallel sampler (exact Jacobi, Jacobi from the prior, '
                   'tolerance Jacobi) on binarised digits and noisy sines, over >= 3 seeds',
          'presets': ['smoke', 'quick', 'full', 'paper']},
 'pflayer-imagenet': {'module': 'reprozoo.pflayer.experiment',
                      'package': 'pflayer',
                      'paper': 'Han et al., Learning Features with Parameter-Free Layers (PfLayer), ICLR '
                               '2022',
                      'claim': "Training entry for the paper's ResNet recipe on ImageNet (R50 76.2%, R50-max "
                               '74.3%, R50-hybrid 77.1% top-1 at 224). It reports the accuracy it measures; '
                               'no verdict is taken from a fixed bar.',
                      'presets': ['smoke', 'quick', 'paper']},
 'pflayer-ops': {'module': 'reprozoo.pflayer.experiment',
                 'package': 'pflayer',
                 'paper': 'Han et al., Learning Features with Parameter-Free Layers (PfLayer), ICLR 2022',
                 'claim': 'A parameter-free 3x3 max-pool can replace the trainable spatial op of a '
                          'bottleneck: the max-pool network is as accurate as the depthwise-conv network '
                          '(the strongest cheap alternative) with fewer parameters and lower measured '
                          'latency.',
                 'presets': ['smoke', 'quick', 'full', 'paper']},
 'rainbow-memory': {'module': 'reprozoo.rainbow.experiment',
                    'package': 'rainbow',
                    'paper': 'Bang et al., Rainbow Memory: Continual Learning with a Memory of Diverse '
                             'Samples (CVPR 2021)',
                    'claim': 'Rainbow Memory (uncertainty-stride, class-balanced memory) beats the strongest '
                             'simple memory alternative (ER-reservoir, class-balanced random memory, GDumb, '
                             'EWC) in final accuracy on a blurry online stream at 4 memory slots per class, '
                             'while fine-tuning without memory loses',
                    'presets': ['smoke', 'quick', 'full', 'paper']},
 'rexnet-channels': {'module': 'reprozoo.rexnet.experiment',
                     'package': 'rexnet',
                     'paper': 'Han et al., Rethinking Channel Dimensions for Efficient Model Design '
                              '(ReXNet), CVPR 2021',
                     'claim': "At equal MACs, ReXNet's configuration (channel width growing linearly with "
                              'the block index, SiLU after each expansion layer) is more accurate than the '
                              'stage-wise MobileNetV2 configuration with ReLU6 and than either change alone.',
                     'presets': ['smoke', 'quick', 'full', 'paper']},
 'rexnet-imagenet': {'module': 'reprozoo.rexnet.experiment',
                     'package': 'rexnet',
                     'paper': 'Han et al., Rethinking Channel Dimensions for Efficient Model Design '
                              '(ReXNet), CVPR 2021',
                     'claim': "Training entry for the paper's ImageNet recipe: ReXNet-1.0x reaches 77.9% "
                              'top-1 (224x224). The paper preset checks top-1 against that anchor on a '
                              'user-supplied ImageNet folder; quick/smoke only exercise the training path on '
                              'small proxy data and do not test the ImageNet number.',
                     'presets': ['smoke', 'quick', 'paper']},
 'rexnet-rank': {'module': 'reprozoo.rexnet.experiment',
                 'package': 'rexnet',
                 'paper': 'Han et al., Rethinking Channel Dimensions for Efficient Model Design (ReXNet), '
                          'CVPR 2021',
                 'claim': "A linear layer's output rank is capped by its input width (rank ratio = "
                          'd_in/d_out), drastic expansion lowers the rank ratio, an elementwise nonlinearity '
                          'after an expansion layer lifts it (notably SiLU/ELU over ReLU6), and an inverted '
                          'bottleneck with t=6 only collapses below DR ~ 1/7.',
                 'presets': ['smoke', 'quick', 'paper']},
 'sinet-ablations': {'module': 'reprozoo.sinet.experiment',
                     'package': 'sinet',
                     'paper': 'Park et al., SINet: Extreme Lightweight Portrait Segmentation Networks with '
                              'Spatial Squeeze Modules and Information Blocking Decoder (WACV 2020)',
                     'claim': "SINet's information blocking decoder beats both a plain additive skip and no "
                              'skip at identical parameters',
                     'presets': ['smoke', 'quick', 'full', 'paper']},
 'sinet-portrait': {'module': 'reprozoo.sinet.experiment',
                    'package': 'sinet',
                    'paper': 'Park et al., SINet: Extreme Lightweight Portrait Segmentation Networks with '
                             'Spatial Squeeze Modules and Information Blocking Decoder (WACV 2020)',
                    'claim': 'SINet (86.9K parameters) segments portraits about as accurately as a 37x '
                             'larger mobile segmenter (LR-ASPP MobileNetV3): its IoU trails by at most 2 '
                             'points',
                    'presets': ['smoke', 'quick', 'full', 'paper']},
 'tvq-vae': {'module': 'reprozoo.tvqvae.experiment',
             'package': 'tvqvae',
             'paper': 'Yoo & Choi, Topic-VQ-VAE: Leveraging Latent Codebooks for Flexible Topic-Guided '
                      'Document Generation (AAAI 2024)',
             'claim': "TVQ-VAE's topics (a ProdLDA-style model over a VQ codebook of language-model token "
                      'embeddings) have higher topic quality (NPMI x diversity, best-50% protocol) than the '
                      'strongest of ProdLDA, LDA and embedding clustering on the same corpus',
             'presets': ['smoke', 'quick', 'full', 'paper']}}

BENCHMARKS = {'activeasr': {'module': 'reprozoo.activeasr.benchmark',
               'package': 'activeasr',
               'description': 'CTC inference RTF (batch 1 vs 32), training utt/s with vs without CR, '
                              'espeak-ng corpus synthesis speed'},
 'eclips': {'module': 'reprozoo.eclips.benchmark',
            'package': 'eclips',
            'description': 'ECLIPS ensemble vs one base learner (loop vs vmap) and MC-dropout cost'},
 'genas': {'module': 'reprozoo.genas.benchmark',
           'package': 'genas',
           'description': 'flatness vs validation-accuracy scoring time per genotype (tiny NB201 supernet); '
                          'stand-alone training runs per CPU-second, one at a time vs grouped'},
 'gmp': {'module': 'reprozoo.gmp.benchmark',
         'package': 'gmp',
         'description': 'PPS vs CPL: training step time at equal batch, inference queries/s'},
 'nara': {'module': 'reprozoo.nara.benchmark',
          'package': 'nara',
          'description': 'NARA vs sequential and exact Jacobi: calls, wall-clock, work and fraction of the '
                         'matmul peak, batch 1 and 64, both tasks'},
 'pflayer': {'module': 'reprozoo.pflayer.benchmark',
             'package': 'pflayer',
             'description': 'R50 vs R50-max/-hybrid and ViT-S vs ViT-S-max CPU latency (batch 1 and 32, '
                            'eager and ONNX Runtime) as ratios in one run; pflayer-ops trials per '
                            'CPU-second, one at a time vs batched'},
 'rainbow': {'module': 'reprozoo.rainbow.benchmark',
             'package': 'rainbow',
             'description': 'RM memory update (12-vote uncertainty scoring, batched) vs reservoir update on '
                            'the same candidates (digits CNN, CPU)'},
 'rexnet': {'module': 'reprozoo.rexnet.benchmark',
            'package': 'rexnet',
            'description': "rexnet_100 CPU latency vs timm's rexnet_100 (batch 1 and 32, 224x224)"},
 'sinet': {'module': 'reprozoo.sinet.benchmark',
           'package': 'sinet',
           'description': 'SINet vs LR-ASPP MobileNetV3: FPS in PyTorch eager and ONNX Runtime, plain and '
                          'deployment export, 224x224 batch 1 (+ batch 8, 320x320), 2 threads'},
 'tvqvae': {'module': 'reprozoo.tvqvae.benchmark',
            'package': 'tvqvae',
            'description': "TVQ-VAE encode + fit time vs LDA, ProdLDA, embedding clustering (ratios to LDA's "
                           'fit time, same run)'}}

MODELS = {'cpl_charades': 'reprozoo.gmp.models',
 'ctc_crnn_small': 'reprozoo.activeasr.models',
 'ctc_crnn_tiny': 'reprozoo.activeasr.models',
 'ctc_tcn_tiny': 'reprozoo.activeasr.models',
 'darts_cifar': 'reprozoo.genas.darts',
 'eclips_cnn_ensemble': 'reprozoo.eclips.models',
 'eclips_cnn_small': 'reprozoo.eclips.models',
 'genas_darts_supernet': 'reprozoo.genas.darts',
 'nara_causal_conv': 'reprozoo.nara.models',
 'nara_made': 'reprozoo.nara.models',
 'nb201_net': 'reprozoo.genas.models',
 'nb201_supernet': 'reprozoo.genas.models',
 'nb201_tiny_net': 'reprozoo.genas.models',
 'nb201_tiny_supernet': 'reprozoo.genas.models',
 'pit_b_max': 'reprozoo.pflayer.vit',
 'pit_s_max': 'reprozoo.pflayer.vit',
 'pit_ti_max': 'reprozoo.pflayer.vit',
 'pps_activitynet': 'reprozoo.gmp.models',
 'pps_charades': 'reprozoo.gmp.models',
 'prodlda': 'reprozoo.tvqvae.models',
 'r50_hybrid': 'reprozoo.pflayer.resnet',
 'r50_max': 'reprozoo.pflayer.resnet',
 'resnet50_pf': 'reprozoo.pflayer.resnet',
 'rexnet_090': 'reprozoo.rexnet.models',
 'rexnet_100': 'reprozoo.rexnet.models',
 'rexnet_130': 'reprozoo.rexnet.models',
 'rexnet_150': 'reprozoo.rexnet.models',
 'rexnet_200': 'reprozoo.rexnet.models',
 'rexnet_220': 'reprozoo.rexnet.models',
 'rexnet_300': 'reprozoo.rexnet.models',
 'rexnet_lite_100': 'reprozoo.rexnet.models',
 'rexnet_lite_130': 'reprozoo.rexnet.models',
 'rexnet_lite_150': 'reprozoo.rexnet.models',
 'rexnet_lite_200': 'reprozoo.rexnet.models',
 'rm_cnn_digits': 'reprozoo.rainbow.models',
 'rm_mlp400': 'reprozoo.rainbow.models',
 'rm_mlp_digits': 'reprozoo.rainbow.models',
 'rm_resnet18_cifar': 'reprozoo.rainbow.models',
 'rm_resnet32_cifar': 'reprozoo.rainbow.models',
 'sinet': 'reprozoo.sinet.models',
 'sinet_encoder': 'reprozoo.sinet.models',
 'tvq_topic_model': 'reprozoo.tvqvae.models',
 'tvq_vq_autoencoder': 'reprozoo.tvqvae.models',
 'vit_b_max': 'reprozoo.pflayer.vit',
 'vit_s_attn': 'reprozoo.pflayer.vit',
 'vit_s_max': 'reprozoo.pflayer.vit',
 'vit_ti_max': 'reprozoo.pflayer.vit'}

COMMANDS = {'antispoof': {'packages': ['eclips'],
               'help': 'Face anti-spoofing per video: live probability, uncertainty, frame spread, '
                       'decision.'},
 'export': {'packages': ['sinet'], 'help': 'Export trained models (ONNX).'},
 'ground': {'packages': ['gmp'],
            'help': "Ground a sentence in a video's pre-extracted features with a trained CPL/PPS model."},
 'rainbow-split': {'packages': ['rainbow'],
                   'help': "Partition a dataset's training set into BlurryM tasks and save the indices per "
                           'task.'},
 'rexnet-convert': {'packages': ['rexnet'],
                    'help': 'Convert an official / timm checkpoint to a reprozoo checkpoint (strict: refuses '
                            'missing or\n'
                            'unexpected keys); the file loads with create_model(MODEL, '
                            'checkpoint_path=DST).'},
 'rexnet-info': {'packages': ['rexnet'],
                 'help': 'Channel schedule, parameter count and MACs of a registered ReXNet.'},
 'segment': {'packages': ['sinet'],
             'help': 'Portrait masks with SINet (default: the official EG1800 weights): any image size, mask '
                     'at the\n'
                     'input size. Inputs sharing a name get distinct outputs. A video input (one file) is '
                     'streamed\n'
                     'to a video with its background replaced, frame rate, size and audio kept. Existing '
                     'outputs are\n'
                     'replaced only with --overwrite; an output that would replace an input is refused.'},
 'topics': {'packages': ['tvqvae'], 'help': 'Fit a TVQ-VAE topic model on CORPUS and print its topics.'},
 'transcribe': {'packages': ['activeasr'],
                'help': 'Transcribe speech with a trained activeasr CTC model (greedy decoding).'}}

if __name__ == "__main__":
    from reprozoo.cli_commands import write_registry_index

    print(f"wrote {write_registry_index()}")
