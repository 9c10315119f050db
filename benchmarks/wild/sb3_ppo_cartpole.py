"""stable-baselines3 PPO on CartPole, the README way: the algorithm object is module-level."""
from stable_baselines3 import PPO

model = PPO("MlpPolicy", "CartPole-v1", verbose=0)

if __name__ == "__main__":
    model.learn(total_timesteps=10_000)
